#!/usr/bin/env python3
"""Peer echo server on asyncio (or uvloop), the Python side of corio's benchmarks.

Usage: echo_asyncio.py [ADDR] [--mode streams|protocol] [--uvloop]

streams (default): start_server, one handler per connection, read(16384) -> write -> drain
until EOF. protocol: a Protocol whose data_received writes the data back. --uvloop uses
uvloop when it can be imported (and says so on stderr when it cannot; the runner checks
that before asking for it). TCP_NODELAY is on (asyncio sets it on TCP transports).
Prints `listening on ADDR` (the bound address, so port 0 works) and flushes stdout.
"""
import argparse
import asyncio
import socket
import sys


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def connection_lost(self, exc):
        self.transport = None


async def handle(reader, writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
    try:
        while True:
            data = await reader.read(16384)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main(host, port, mode):
    loop = asyncio.get_running_loop()
    if mode == "protocol":
        server = await loop.create_server(EchoProtocol, host, port, backlog=4096)
    else:
        server = await asyncio.start_server(handle, host, port, backlog=4096)
    h, p = server.sockets[0].getsockname()[:2]
    print(f"listening on {h}:{p}", flush=True)
    async with server:
        await server.serve_forever()


def parse():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("addr", nargs="?", default="127.0.0.1:8888")
    ap.add_argument("--mode", choices=["streams", "protocol"], default="streams")
    ap.add_argument("--uvloop", action="store_true")
    a = ap.parse_args()
    host, _, port = a.addr.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port), a.mode, a.uvloop


if __name__ == "__main__":
    host, port, mode, want_uvloop = parse()
    if want_uvloop:
        try:
            import uvloop
        except ImportError:
            print("echo_asyncio: uvloop is not importable", file=sys.stderr)
            sys.exit(3)
        uvloop.install()
    try:
        asyncio.run(main(host, port, mode))
    except KeyboardInterrupt:
        pass
