//! Context variables: values that follow a task, not a thread (Python's `contextvars`, book
//! 14.2).
//!
//! asyncio counterpart: `contextvars.ContextVar`, `Token`, `Context`, `copy_context`, with
//! asyncio's rule that a task runs in a *copy* of the context it was created in. Layer 3: kept
//! per task by the task core, per callback by the loop.
//!
//! # The rules
//!
//! - A task gets a **snapshot** of its spawner's context when it is spawned
//!   ([`spawn`](crate::spawn), [`EventLoop::create_task`](crate::EventLoop::create_task),
//!   [`corio::run`](crate::run)'s main task).
//! - [`ContextVar::set`] inside a task changes that task's context only: its spawner, its
//!   siblings and tasks it spawned earlier keep their values. Tasks it spawns later copy the
//!   new value.
//! - A callback scheduled with [`call_soon`](crate::EventLoop::call_soon),
//!   [`call_later`](crate::EventLoop::call_later) or [`call_at`](crate::EventLoop::call_at)
//!   runs in a snapshot of the context of whoever scheduled it (a task, or another callback).
//! - Outside any task (before the loop runs, in the future given to `run_until_complete`, in a
//!   callback scheduled from there) the thread has a context of its own.
//! - Not carried: callbacks from other threads (`call_soon_threadsafe`: a context is `!Send`),
//!   `add_reader`/`add_writer` callbacks and done callbacks (they run in the thread's context).
//!
//! ```
//! use corio::contextvars::ContextVar;
//!
//! static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id", 0);
//!
//! fn deep_helper() -> String {
//!     format!("handling request {}", REQUEST_ID.get())
//! }
//!
//! corio::run(async {
//!     let a = corio::spawn(async {
//!         REQUEST_ID.set(1);
//!         corio::yield_now().await; // b runs here and sets its own value
//!         deep_helper()
//!     });
//!     let b = corio::spawn(async {
//!         REQUEST_ID.set(2);
//!         corio::yield_now().await;
//!         deep_helper()
//!     });
//!     assert_eq!(a.await.unwrap(), "handling request 1");
//!     assert_eq!(b.await.unwrap(), "handling request 2");
//!     assert_eq!(REQUEST_ID.get(), 0, "the tasks' sets did not touch main's context");
//! });
//! ```
//!
//! # How it is stored
//!
//! A [`Context`] is a persistent map: an `Rc` of a small vector sorted by variable id. Cloning
//! is a reference-count increment; `set` copies the vector (a handful of entries) into a new
//! `Rc`, so every snapshot taken earlier is unchanged. A task whose context is empty stores
//! nothing (so tasks that never use context variables pay nothing); otherwise the context
//! lives in the task's rarely used `Extra` data. Lookups go through the task being polled
//! (the pointer `current_task` already uses), so polling a task swaps nothing: the cost is on
//! `get`/`set`, not on the loop's hot path.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::tasks::raw;

/// One variable's value in a context, keyed by the variable's id.
type Entries = Vec<(u64, Rc<dyn Any>)>;

/// A snapshot of context variable values (asyncio's `contextvars.Context`): a persistent map,
/// cheap to clone. Get one with [`copy_context`]; run code in it with [`Context::run`].
///
/// ```
/// use corio::contextvars::{ContextVar, copy_context};
///
/// let user: ContextVar<&str> = ContextVar::new("user", "nobody");
/// user.set("ada");
/// let snapshot = copy_context();
/// user.set("grace");
/// assert_eq!(snapshot.run(|| user.get()), "ada");
/// assert_eq!(user.get(), "grace");
/// ```
#[derive(Clone, Default)]
pub struct Context {
    map: Option<Rc<Entries>>,
}

impl Context {
    /// Whether no variable has a value in this context.
    pub fn is_empty(&self) -> bool {
        self.map.is_none()
    }

    /// How many variables have a value in this context.
    pub fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len())
    }

    fn lookup(&self, id: u64) -> Option<Rc<dyn Any>> {
        let m = self.map.as_ref()?;
        let i = m.binary_search_by_key(&id, |e| e.0).ok()?;
        Some(m[i].1.clone())
    }

    /// A new context: this one with `id` set to `value` (or removed, for `None`).
    fn with_value(&self, id: u64, value: Option<Rc<dyn Any>>) -> Context {
        let mut v: Entries = self.map.as_deref().cloned().unwrap_or_default();
        match (v.binary_search_by_key(&id, |e| e.0), value) {
            (Ok(i), Some(val)) => v[i].1 = val,
            (Ok(i), None) => {
                v.remove(i);
            }
            (Err(i), Some(val)) => v.insert(i, (id, val)),
            (Err(_), None) => {}
        }
        Context {
            map: (!v.is_empty()).then(|| Rc::new(v)),
        }
    }

    /// Runs `f` with this context as the current one, then restores the previous context
    /// (also if `f` panics). Changes `f` makes with [`ContextVar::set`] are discarded when it
    /// returns: a `Context` is an immutable snapshot (asyncio's `Context.run` keeps them in
    /// the `Context` object instead).
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Context>);
        impl Drop for Restore {
            fn drop(&mut self) {
                if let Some(prev) = self.0.take() {
                    replace_current(prev);
                }
            }
        }
        let _restore = Restore(Some(replace_current(self.clone())));
        f()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("vars", &self.len())
            .finish()
    }
}

/// Set (for good) the first time any variable is set or a context is entered, anywhere in
/// the process. Until then spawning and scheduling skip the context entirely: one relaxed
/// load, no thread-local access, so programs that never use context variables pay nothing.
static IN_USE: AtomicBool = AtomicBool::new(false);

/// Whether any context variable was ever set in this process.
#[inline]
pub(crate) fn in_use() -> bool {
    IN_USE.load(Ordering::Relaxed)
}

thread_local! {
    /// The context of code that runs outside any task on this thread.
    static OUTSIDE: RefCell<Context> = const { RefCell::new(Context { map: None }) };
}

/// The current context: the polled task's, or this thread's outside any task.
#[inline]
pub(crate) fn current() -> Context {
    if in_use() {
        current_slow()
    } else {
        Context::default()
    }
}

fn current_slow() -> Context {
    raw::with_current_header(|h| h.peek_extra(|e| e.map(|e| e.context.clone())))
        .unwrap_or_else(|| Some(OUTSIDE.with(|c| c.borrow().clone())))
        .unwrap_or_default()
}

/// Makes `ctx` the current context and returns the previous one.
pub(crate) fn replace_current(ctx: Context) -> Context {
    if !ctx.is_empty() {
        IN_USE.store(true, Ordering::Relaxed);
    }
    let mut slot = Some(ctx);
    let in_task = raw::with_current_header(|h| {
        let ctx = slot.take().expect("taken once");
        if ctx.is_empty() {
            // Do not allocate the task's extra data just to store nothing.
            h.peek_extra(|e| e.map(|e| std::mem::take(&mut e.context)))
                .unwrap_or_default()
        } else {
            h.with_extra(|e| std::mem::replace(&mut e.context, ctx))
        }
    });
    match in_task {
        Some(prev) => prev,
        None => OUTSIDE.with(|c| c.replace(slot.take().expect("not taken outside a task"))),
    }
}

/// What a callback scheduled now must run in, or `None` when it can simply run in the
/// thread's context (nothing set anywhere: the common case, no allocation).
#[inline]
pub(crate) fn capture_for_callback() -> Option<Context> {
    if in_use() { capture_slow() } else { None }
}

fn capture_slow() -> Option<Context> {
    let cur = current_slow();
    if cur.is_empty() && OUTSIDE.with(|c| c.borrow().is_empty()) {
        None
    } else {
        Some(cur)
    }
}

/// A snapshot of the current context (asyncio's `contextvars.copy_context`): inside a task,
/// the task's context; elsewhere the thread's.
///
/// ```
/// let ctx = corio::contextvars::copy_context();
/// assert!(ctx.is_empty());
/// ```
pub fn copy_context() -> Context {
    current()
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Who made a token: a task (its id and its loop) or code outside any task (0, 0).
fn owner() -> (u64, usize) {
    raw::with_current_header(|h| (h.id, std::sync::Arc::as_ptr(&h.shared) as usize))
        .unwrap_or((0, 0))
}

/// A context variable (asyncio's `contextvars.ContextVar`): a value that each task sees in
/// its own context. See the [module docs](self) for the rules.
///
/// `new` is `const`, so a variable is usually a `static`, like a module-level `ContextVar`
/// in Python (that needs `T: Sync`; any `T: 'static` works for a local variable). The value
/// is `T`; until it is set in the current context, [`get`](ContextVar::get) gives the default.
///
/// ```
/// use corio::contextvars::ContextVar;
/// use std::time::Duration;
///
/// static CLIENT: ContextVar<Option<std::net::SocketAddr>> = ContextVar::new("client", None);
///
/// corio::run(async {
///     let addr = "10.0.0.7:4242".parse().unwrap();
///     CLIENT.set(Some(addr));
///     // A callback scheduled from this task sees the task's context.
///     let seen = corio::Future::new();
///     let setter = seen.clone();
///     corio::get_running_loop().call_later(Duration::from_millis(1), move || {
///         setter.set_result(CLIENT.get()).unwrap();
///     });
///     assert_eq!(seen.await.unwrap(), Some(addr));
/// });
/// ```
pub struct ContextVar<T: 'static> {
    name: &'static str,
    default: T,
    /// Assigned from a global counter on first use (0: not yet), so `new` can be `const`.
    id: AtomicU64,
}

/// What [`ContextVar::set`] returns: give it back to [`ContextVar::reset`] to restore the
/// value the variable had before (asyncio's `Token`). It must be reset by the same task (or
/// by code outside any task if it was made there).
pub struct Token<T: 'static> {
    var: u64,
    old: Option<Rc<dyn Any>>,
    owner: (u64, usize),
    _value: PhantomData<fn() -> T>,
}

impl<T: 'static> fmt::Debug for Token<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("var", &self.var)
            .field("had_value", &self.old.is_some())
            .finish()
    }
}

impl<T: 'static> ContextVar<T> {
    /// A new variable named `name` (for debugging) whose value is `default` wherever it was
    /// not set.
    pub const fn new(name: &'static str, default: T) -> ContextVar<T> {
        ContextVar {
            name,
            default,
            id: AtomicU64::new(0),
        }
    }

    fn id(&self) -> u64 {
        let id = self.id.load(Ordering::Acquire);
        if id != 0 {
            return id;
        }
        let fresh = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        match self
            .id
            .compare_exchange(0, fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => fresh,
            Err(won) => won,
        }
    }

    /// The variable's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Calls `f` with the value in the current context (the default if it was not set),
    /// without cloning it.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        match current().lookup(self.id()) {
            Some(v) => f(v
                .downcast_ref::<T>()
                .expect("a context variable's value has the variable's type")),
            None => f(&self.default),
        }
    }

    /// The value in the current context, or the default if it was not set (asyncio's
    /// `get()` with a default).
    pub fn get(&self) -> T
    where
        T: Clone,
    {
        self.with(T::clone)
    }

    /// Whether the variable has a value of its own in the current context.
    pub fn is_set(&self) -> bool {
        current().lookup(self.id()).is_some()
    }

    /// Sets the value in the current context only (the task's, or the thread's outside any
    /// task) and returns a [`Token`] that can undo it.
    pub fn set(&self, value: T) -> Token<T> {
        let id = self.id();
        let cur = current();
        let old = cur.lookup(id);
        replace_current(cur.with_value(id, Some(Rc::new(value))));
        Token {
            var: id,
            old,
            owner: owner(),
            _value: PhantomData,
        }
    }

    /// Restores the value the variable had before the [`set`](ContextVar::set) that made
    /// `token` (asyncio's `reset`). Panics if the token belongs to another variable or was
    /// made in another task.
    ///
    /// ```
    /// use corio::contextvars::ContextVar;
    /// let depth: ContextVar<u32> = ContextVar::new("depth", 0);
    /// let t1 = depth.set(1);
    /// let t2 = depth.set(2);
    /// depth.reset(t2);
    /// assert_eq!(depth.get(), 1);
    /// depth.reset(t1);
    /// assert!(!depth.is_set());
    /// ```
    pub fn reset(&self, token: Token<T>) {
        let id = self.id();
        assert!(
            token.var == id,
            "ContextVar::reset: the token was created by a different ContextVar (not {:?})",
            self.name
        );
        assert!(
            token.owner == owner(),
            "ContextVar::reset: the token for {:?} was created in a different Context (another task)",
            self.name
        );
        replace_current(current().with_value(id, token.old));
    }
}

impl<T: fmt::Debug + 'static> fmt::Debug for ContextVar<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextVar")
            .field("name", &self.name)
            .field("default", &self.default)
            .finish()
    }
}
