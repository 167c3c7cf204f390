//! Fail-stop on panic. A panic in a node means its memory may no longer match its
//! store (a poisoned documents' lock fails every call after it, while health still
//! says SERVING; tokio would catch a request handler's panic and go on): the binary
//! installs [`install`]'s hook, which stops the process at once, exit code
//! [`PANIC_EXIT_CODE`], with the panic's message and location on stderr and in the
//! log, so that its supervisor starts a clean process on the same data.
//!
//! The one exception: automerge is known to panic on some hostile input, and the
//! node refuses such input instead. Those narrow regions run inside
//! [`catch_expected`], which marks the thread while they run; a panic raised there is
//! logged and returned to the caller as a [`CaughtPanic`]. Every catch of a panic goes
//! through it (clippy's `disallowed-methods` refuses a raw `std::panic::catch_unwind`).
//!
//! It must never catch a panic outside such a region, nor be installed by the library
//! or its unit tests (a test's panic would end the test process).

use std::cell::Cell;
use std::fmt;
use std::panic::{PanicHookInfo, UnwindSafe};

// The regions of `catch_expected` need panics to unwind: with `panic = "abort"` a
// hostile peer could stop a node with one bundle, at will.
#[cfg(panic = "abort")]
compile_error!(
    "mart-node must be built with panic = \"unwind\": its hook stops the process on \
     every panic but those caught by fail_stop::catch_expected"
);

/// The code a node exits with after a panic (Rust's own for a panicking `main`).
pub const PANIC_EXIT_CODE: i32 = 101;

thread_local! {
    /// How many [`catch_expected`] regions the thread is inside.
    static EXPECTED_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// A panic raised inside [`catch_expected`], caught.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaughtPanic {
    /// The panic's message (empty when its payload was not text).
    pub message: String,
}

impl fmt::Display for CaughtPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "panicked: {}", self.message)
    }
}

/// What the hook does with a panic on the current thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Raised inside [`catch_expected`]: logged, caught, the node goes on.
    Caught,
    /// Anywhere else: the process stops.
    Stop,
}

/// The verdict on a panic raised now, on this thread.
pub fn verdict() -> Verdict {
    if EXPECTED_DEPTH.with(Cell::get) > 0 {
        Verdict::Caught
    } else {
        Verdict::Stop
    }
}

/// Marks the thread as inside a [`catch_expected`] region until dropped, however
/// the region ends.
struct ExpectedRegion;

impl ExpectedRegion {
    fn enter() -> Self {
        EXPECTED_DEPTH.with(|depth| depth.set(depth.get() + 1));
        ExpectedRegion
    }
}

impl Drop for ExpectedRegion {
    fn drop(&mut self) {
        EXPECTED_DEPTH.with(|depth| depth.set(depth.get() - 1));
    }
}

/// Runs `f`, a call into automerge that is known to panic on some hostile input, and
/// returns its panic as an error instead of stopping the node. Keep `f` narrow: the
/// library call and the reading of its result, never the node's own bookkeeping,
/// since a bug of the node's inside it would be caught too.
#[allow(clippy::disallowed_methods)] // the one place a panic is caught
pub fn catch_expected<R>(f: impl FnOnce() -> R + UnwindSafe) -> Result<R, CaughtPanic> {
    let _region = ExpectedRegion::enter();
    std::panic::catch_unwind(f).map_err(|payload| CaughtPanic {
        message: payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default(),
    })
}

/// Installs the process-wide panic hook: a panic inside [`catch_expected`] is logged
/// as a warning; any other is reported by the default hook (stderr, and a backtrace
/// when `RUST_BACKTRACE` asks) and logged as an error, then the process exits with
/// [`PANIC_EXIT_CODE`] without unwinding, so that nothing sees the state it left.
/// For the binary only.
pub fn install() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| match verdict() {
        Verdict::Caught => tracing::warn!(
            at = %location(info),
            "automerge panicked on input it was given, caught and refused: {}",
            message(info)
        ),
        Verdict::Stop => {
            default(info);
            tracing::error!(
                at = %location(info),
                thread = std::thread::current().name().unwrap_or("unnamed"),
                "stopping the node after a panic (its memory may no longer match its \
                 store; a supervisor should start it again): {}",
                message(info)
            );
            std::process::exit(PANIC_EXIT_CODE);
        }
    }));
}

fn message(info: &PanicHookInfo<'_>) -> String {
    info.payload_as_str().unwrap_or("(not text)").to_string()
}

fn location(info: &PanicHookInfo<'_>) -> String {
    info.location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_the_region_is_returned_as_an_error() {
        let caught = catch_expected(|| -> u32 { panic!("boom {}", 7) });
        assert_eq!(
            caught,
            Err(CaughtPanic {
                message: "boom 7".into()
            })
        );
        assert_eq!(catch_expected(|| 5), Ok(5));
    }

    #[test]
    fn the_verdict_is_caught_only_inside_the_region() {
        assert_eq!(verdict(), Verdict::Stop);
        let inside = catch_expected(|| {
            let nested = catch_expected(verdict);
            (nested, verdict())
        });
        assert_eq!(inside, Ok((Ok(Verdict::Caught), Verdict::Caught)));
        assert_eq!(verdict(), Verdict::Stop, "the region ended");
        let _ = catch_expected(|| panic!("unwinds through the marker"));
        assert_eq!(verdict(), Verdict::Stop, "a panic ends the region too");
    }

    #[test]
    fn the_region_is_the_thread_that_entered_it() {
        let other = catch_expected(|| std::thread::spawn(verdict).join().unwrap());
        assert_eq!(other, Ok(Verdict::Stop));
    }
}
