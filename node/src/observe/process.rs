//! The standard `process_*` metrics of this process (resident memory, CPU seconds,
//! open and allowed file descriptors, start time), read from `/proc/self` at every
//! scrape, under the names every Prometheus client library uses so that existing
//! dashboards and alerts work on them unchanged.
//!
//! It must never fail a scrape: a value `/proc` does not give is left out.

use std::fmt::Write as _;

/// What `/proc/self` says of this process.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub start_time_seconds: Option<f64>,
}

impl ProcessStats {
    /// Reads them now.
    pub fn read() -> Self {
        let ticks = clock_ticks_per_second();
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        // Fields after the command name (which may hold spaces), from field 3 on.
        let fields: Vec<&str> = stat
            .as_deref()
            .and_then(|s| s.rsplit_once(')'))
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        let page = 4096;
        let boot = boot_time_seconds();
        ProcessStats {
            resident_bytes: field(24).map(|pages| pages * page),
            virtual_bytes: field(23),
            cpu_seconds: match (field(14), field(15)) {
                (Some(user), Some(system)) => Some((user + system) as f64 / ticks),
                _ => None,
            },
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            max_fds: nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .ok()
                .map(|(soft, _)| soft),
            start_time_seconds: match (boot, field(22)) {
                (Some(boot), Some(start)) => Some(boot + start as f64 / ticks),
                _ => None,
            },
        }
    }

    /// The Prometheus text of these figures.
    pub fn render(&self) -> String {
        let as_f64 = |v: Option<u64>| v.map(|v| v as f64);
        let figures = [
            (
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                as_f64(self.resident_bytes),
            ),
            (
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size in bytes.",
                as_f64(self.virtual_bytes),
            ),
            (
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                self.cpu_seconds,
            ),
            (
                "process_open_fds",
                "gauge",
                "Number of open file descriptors.",
                as_f64(self.open_fds),
            ),
            (
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                as_f64(self.max_fds),
            ),
            (
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since unix epoch in seconds.",
                self.start_time_seconds,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in figures {
            if let Some(value) = value {
                let _ = write!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
                );
            }
        }
        out
    }
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant of the system; it takes no pointer.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// When the machine booted (`btime` of `/proc/stat`), in seconds since the epoch.
fn boot_time_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<f64>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_cpu_and_descriptors() {
        let stats = ProcessStats::read();
        assert!(stats.resident_bytes.unwrap() > 1_000_000, "{stats:?}");
        assert!(stats.open_fds.unwrap() >= 3, "{stats:?}");
        assert!(stats.cpu_seconds.is_some() && stats.start_time_seconds.is_some());
        let text = stats.render();
        assert!(
            text.contains("# TYPE process_cpu_seconds_total counter\n"),
            "{text}"
        );
    }
}
