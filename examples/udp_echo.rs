//! A UDP echo server and client on datagram transports (asyncio's
//! `create_datagram_endpoint` with a `DatagramProtocol`).
//!
//! Run: `cargo run --example udp_echo -- [ADDR]` (default `127.0.0.1:9999`; port 0 picks a
//! free port). It prints `listening on ADDR` and echoes every datagram back to its sender.
//! Try it with `nc -u 127.0.0.1 9999`. With `--client MESSAGE...`, it instead sends each
//! MESSAGE to ADDR and prints the echo (or `timeout` after 1 s).
//!
//! What it shows: the datagram protocol callbacks, `sendto` without awaiting, and errors
//! that are not fatal: a client whose datagram hits a closed port gets `error_received`
//! (the ICMP "port unreachable" as `ConnectionRefused`), and its endpoint carries on.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use corio::protocols::{BaseProtocol, DatagramProtocol};
use corio::transports::DatagramTransport;

#[derive(Default)]
struct Echo {
    transport: Option<DatagramTransport>,
}

impl BaseProtocol for Echo {}

impl DatagramProtocol for Echo {
    fn connection_made(&mut self, transport: &DatagramTransport) {
        self.transport = Some(transport.clone());
    }
    fn datagram_received(&mut self, data: &[u8], addr: SocketAddr) {
        if let Some(t) = &self.transport {
            t.sendto(data, Some(addr));
        }
    }
    fn error_received(&mut self, exc: std::io::Error) {
        eprintln!("udp_echo: {exc} (carrying on)");
    }
}

/// What the client saw: a datagram, or an error's text.
type Inbox = Rc<RefCell<VecDeque<Result<Vec<u8>, String>>>>;

/// The client side: collects what comes back.
#[derive(Default)]
struct Client {
    got: Inbox,
}

impl BaseProtocol for Client {}

impl DatagramProtocol for Client {
    fn datagram_received(&mut self, data: &[u8], _addr: SocketAddr) {
        self.got.borrow_mut().push_back(Ok(data.to_vec()));
    }
    fn error_received(&mut self, exc: std::io::Error) {
        self.got.borrow_mut().push_back(Err(exc.to_string()));
    }
}

fn main() {
    let mut addr: SocketAddr = "127.0.0.1:9999".parse().unwrap();
    let mut messages = Vec::new();
    let mut client = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--client" => client = true,
            "-h" | "--help" => {
                eprintln!("usage: udp_echo [ADDR] [--client MESSAGE...]");
                std::process::exit(2);
            }
            _ if client => messages.push(a),
            _ => {
                addr = a.parse().unwrap_or_else(|e| {
                    eprintln!("udp_echo: bad address {a}: {e}");
                    std::process::exit(2);
                })
            }
        }
    }
    corio::run(async move {
        let ev = corio::get_running_loop();
        if !client {
            let (t, _) = ev
                .create_datagram_endpoint(Echo::default, Some(addr), None)
                .await
                .unwrap_or_else(|e| {
                    eprintln!("udp_echo: cannot bind {addr}: {e}");
                    std::process::exit(1);
                });
            println!("listening on {}", t.sockname().unwrap());
            use std::io::Write;
            std::io::stdout().flush().ok();
            std::future::pending::<()>().await;
        }
        let got = Rc::new(RefCell::new(VecDeque::new()));
        let g = got.clone();
        let (t, _) = ev
            .create_datagram_endpoint(move || Client { got: g }, None, Some(addr))
            .await
            .expect("udp_echo: cannot open the client endpoint");
        for m in messages {
            t.sendto(m.as_bytes(), None);
            let deadline = ev.time() + Duration::from_secs(1);
            loop {
                if let Some(r) = got.borrow_mut().pop_front() {
                    match r {
                        Ok(d) => println!("{}", String::from_utf8_lossy(&d)),
                        Err(e) => println!("error: {e}"),
                    }
                    break;
                }
                if ev.time() >= deadline {
                    println!("timeout");
                    break;
                }
                corio::sleep(Duration::from_millis(5)).await;
            }
        }
        t.close();
    });
}
