//! Resident memory of this process from `/proc/self/status`: the current RSS and the
//! peak since the last [`reset_peak`], so a phase of a benchmark can be measured on
//! its own.
//!
//! It must never guess: where the kernel does not tell (not Linux), it says so (`None`).

/// Resets the peak RSS (`VmHWM`) to the current RSS; false if the kernel refused.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Current resident memory, bytes.
pub fn rss() -> Option<u64> {
    status_kib("VmRSS:").map(|kib| kib * 1024)
}

/// Peak resident memory since start or the last [`reset_peak`], bytes.
pub fn peak() -> Option<u64> {
    status_kib("VmHWM:").map(|kib| kib * 1024)
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let rss = super::rss().expect("linux tells");
        let peak = super::peak().expect("linux tells");
        assert!(rss > 1 << 20 && peak >= rss / 2, "rss {rss} peak {peak}");
    }
}
