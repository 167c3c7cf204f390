//! The events the node's layers count for `/metrics`: durable writes and their
//! latency, group-commit flushes, refused gRPC calls, sync sessions. Each is a call
//! into the `metrics` facade (an atomic add on a handle the recorder keeps); the
//! names live here so every layer counts under the same one, and `observe` renders
//! them.
//!
//! It must never block, fail or allocate per event beyond the facade's own key
//! lookup: a counter is bookkeeping, never a reason for a write to wait. Before the
//! recorder is installed (unit tests, `martctl`), every call is a no-op.

use std::time::Duration;

/// Writes made durable by a group-commit flush (counter).
pub const DURABLE_WRITES: &str = "nttmart_durable_writes_total";
/// From a writer asking for durability to its flush returning (histogram).
pub const DURABLE_WRITE_SECONDS: &str = "nttmart_durable_write_duration_seconds";
/// Group-commit flushes (counter), label `outcome` (`ok`, `failed`).
pub const FLUSHES: &str = "nttmart_group_commit_flushes_total";
/// Writes carried by one flush (histogram).
pub const WRITES_PER_FLUSH: &str = "nttmart_group_commit_writes_per_flush";
/// gRPC calls answered with a status other than OK (counter), labels `rpc`, `code`.
pub const REFUSALS: &str = "nttmart_grpc_refusals_total";
/// gRPC calls answered (counter), labels `rpc`, `code`.
pub const GRPC_CALLS: &str = "nttmart_grpc_calls_total";
/// Sync sessions opened (counter).
pub const SESSIONS_OPENED: &str = "nttmart_sync_sessions_opened_total";
/// Sync sessions ended (counter), label `reason` (`closed`, `error`, `replaced`).
pub const SESSIONS_ENDED: &str = "nttmart_sync_sessions_ended_total";

/// Buckets of [`DURABLE_WRITE_SECONDS`]: an fsync is about 0.1 ms here, a slow disk
/// tens of ms.
pub const DURABLE_WRITE_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];
/// Buckets of [`WRITES_PER_FLUSH`].
pub const WRITES_PER_FLUSH_BUCKETS: &[f64] =
    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];

/// A writer's changes are durable, `latency` after it asked.
pub fn durable_write(latency: Duration) {
    metrics::histogram!(DURABLE_WRITE_SECONDS).record(latency.as_secs_f64());
}

/// A group-commit flush carried `writes` writers' changes (or failed).
pub fn flushed(writes: usize, ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    metrics::counter!(FLUSHES, "outcome" => outcome).increment(1);
    if ok {
        metrics::counter!(DURABLE_WRITES).increment(writes as u64);
        metrics::histogram!(WRITES_PER_FLUSH).record(writes as f64);
    }
}

/// A gRPC call to `rpc` (`Service/Method`) was answered with `code` (`OK`,
/// `INVALID_ARGUMENT`, ...).
pub fn grpc_answered(rpc: &str, code: &'static str) {
    let rpc = rpc.to_string();
    metrics::counter!(GRPC_CALLS, "rpc" => rpc.clone(), "code" => code).increment(1);
    if code != "OK" {
        metrics::counter!(REFUSALS, "rpc" => rpc, "code" => code).increment(1);
    }
}

/// A sync session with a peer opened.
pub fn session_opened() {
    metrics::counter!(SESSIONS_OPENED).increment(1);
}

/// Why a sync session ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// It ended without an error (the peer or this node closed it, shutdown).
    Closed,
    /// It ended on an error (a dead link, a refused message, a protocol fault).
    Error,
    /// A newer session of the same peer took over.
    Replaced,
}

impl SessionEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEnd::Closed => "closed",
            SessionEnd::Error => "error",
            SessionEnd::Replaced => "replaced",
        }
    }
}

/// A sync session ended.
pub fn session_ended(reason: SessionEnd) {
    metrics::counter!(SESSIONS_ENDED, "reason" => reason.as_str()).increment(1);
}
