//! The node's file descriptor budget. At start the soft RLIMIT_NOFILE is raised to
//! the hard limit; then the cap on gRPC connections is lowered, if need be, so that
//! a reserve of descriptors always stays for the admin socket, the store and the
//! dial to the hub: a flood of TCP connections fills the cap, never the process.
//!
//! It must never lower a limit, and never fail the start over one: a limit it
//! cannot read or raise is logged and the configured cap kept.

use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};

/// Descriptors kept out of the gRPC connections' reach, beyond those already open
/// when the cap is set: admin socket connections (operators, scripts, a supervisor's
/// health checks), the dial to the hub, files the store opens later, the logs.
pub const RESERVED_FDS: u64 = 64;

/// Where the soft limit goes when the hard limit is unlimited (Linux's default
/// `fs.nr_open`, above which the kernel refuses it).
const UNLIMITED_TARGET: u64 = 1 << 20;

/// The open file limit in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft limit to the hard one and returns the limits now in force;
/// `None` when they cannot be read.
pub fn raise_nofile_limit() -> Option<NofileLimit> {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open file limit (RLIMIT_NOFILE); the gRPC connection cap is not checked against it");
            return None;
        }
    };
    let target = if hard == RLIM_INFINITY {
        UNLIMITED_TARGET
    } else {
        hard
    };
    if soft >= target {
        return Some(NofileLimit { soft, hard });
    }
    match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) => {
            tracing::info!(
                from = soft,
                to = target,
                "raised the open file limit to the hard limit"
            );
            Some(NofileLimit { soft: target, hard })
        }
        Err(e) => {
            tracing::warn!(error = %e, soft, hard, "cannot raise the open file limit; keeping it");
            Some(NofileLimit { soft, hard })
        }
    }
}

/// Descriptors this process has open now; `None` where `/proc` cannot tell.
pub fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// The cap on gRPC connections: `configured`, lowered to what `soft_limit` leaves
/// once the `in_use` descriptors and [`RESERVED_FDS`] are set aside; at least 1.
pub fn connection_cap(configured: usize, soft_limit: u64, in_use: u64) -> usize {
    let room = soft_limit
        .saturating_sub(in_use)
        .saturating_sub(RESERVED_FDS);
    usize::try_from(room)
        .unwrap_or(usize::MAX)
        .min(configured)
        .max(1)
}

/// The cap for this process now, logged; a warning when the limit lowers the
/// configured one.
pub fn cap_for_this_process(configured: usize, limit: Option<NofileLimit>) -> usize {
    let Some(limit) = limit else {
        return configured;
    };
    let in_use = open_fds().unwrap_or(RESERVED_FDS);
    let cap = connection_cap(configured, limit.soft, in_use);
    if cap < configured {
        tracing::warn!(
            configured,
            cap,
            open_file_limit = limit.soft,
            in_use,
            reserved = RESERVED_FDS,
            "the open file limit cannot hold grpc.max_connections: gRPC connections are capped lower; raise the limit (ulimit -n, or LimitNOFILE= under systemd)"
        );
    } else {
        tracing::info!(cap, open_file_limit = limit.soft, "gRPC connections capped");
    }
    cap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_the_reserve_free() {
        assert_eq!(connection_cap(256, 20_000, 30), 256);
        // `ulimit -n 256` with 30 open: 256 - 30 - 64.
        assert_eq!(connection_cap(256, 256, 30), 162);
        assert_eq!(connection_cap(100, 256, 30), 100);
        assert_eq!(
            connection_cap(256, 64, 30),
            1,
            "never 0: the port still serves"
        );
        assert_eq!(connection_cap(256, u64::MAX, 30), 256);
    }

    #[test]
    fn the_soft_limit_is_raised_never_lowered() {
        let (soft_before, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let limit = raise_nofile_limit().unwrap();
        assert!(limit.soft >= soft_before);
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap().0, limit.soft);
        assert!(open_fds().unwrap() >= 3);
    }
}
