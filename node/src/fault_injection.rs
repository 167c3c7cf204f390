//! Faults a test can inject into a real node process: with the `fault-injection`
//! feature (the `mart-node-faults` binary the tests build), `MART_FAULT_PANIC=NAME`
//! or `NAME:N` makes the N-th pass (the first by default) through [`point`] `NAME`
//! panic there.
//!
//! It must never do anything without the feature: the product's binaries are built
//! without it, and [`point`] is then an empty function.

/// The variable that arms a panic: `NAME` or `NAME:N`.
pub const PANIC_VAR: &str = "MART_FAULT_PANIC";

/// A place a fault can be injected, named `name`.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_name: &str) {}

/// A place a fault can be injected, named `name`: panics on the pass that
/// `MART_FAULT_PANIC` names.
#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static PASSES: AtomicU64 = AtomicU64::new(0);
    let Ok(armed) = std::env::var(PANIC_VAR) else {
        return;
    };
    let (armed_name, nth) = match armed.split_once(':') {
        Some((armed_name, n)) => (armed_name, n.parse::<u64>().unwrap_or(1)),
        None => (armed.as_str(), 1),
    };
    if armed_name == name && PASSES.fetch_add(1, Ordering::SeqCst) + 1 == nth {
        panic!("fault injected at {name} (pass {nth}, {PANIC_VAR}={armed})");
    }
}
