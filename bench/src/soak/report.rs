//! What the soak prints: one aligned line per node per sample while it runs, then per
//! node the warm-up sample beside the last with growth per minute and a verdict per
//! metric ([`super::trend`]), and the exactly-once tally of each district.
//!
//! It only formats; it decides nothing.

use std::time::Duration;

use super::exactly_once::Tally;
use super::probe::Reading;
use super::seller::Till;
use super::trend::{self, mib, Metric, Point};

/// `mm:ss` of a time since the start.
pub fn clock(at: Duration) -> String {
    let secs = at.as_secs();
    format!("{:02}:{:02}", secs / 60, secs % 60)
}

pub fn sample_header() -> String {
    format!(
        "{:>6}  {:<7} {:>8} {:>5} {:>7} {:>9} {:>8} {:>7}  {:<7} {:>9} {:>6}",
        "t",
        "node",
        "rss MiB",
        "fds",
        "threads",
        "disk MiB",
        "cpu s",
        "sales",
        "link",
        "link KiB",
        "conns"
    )
}

/// The link columns of a district: its state, bytes through its proxy, connections.
pub struct LinkFigures {
    pub state: &'static str,
    pub bytes: u64,
    pub connections: u64,
}

pub fn sample_line(
    label: &str,
    node: &str,
    r: &Reading,
    sales: u64,
    link: Option<LinkFigures>,
) -> String {
    let link = link.map_or(format!("{:<7} {:>9} {:>6}", "-", "-", "-"), |l| {
        format!("{:<7} {:>9} {:>6}", l.state, l.bytes / 1024, l.connections)
    });
    format!(
        "{:>6}  {:<7} {:>8.1} {:>5} {:>7} {:>9.2} {:>8.2} {:>7}  {link}",
        label,
        node,
        mib(r.rss),
        r.fds,
        r.threads,
        mib(r.disk),
        r.cpu_secs,
        sales,
    )
}

/// Per node: each metric's first warm sample, last, growth per minute, bytes per
/// sale, allowance and verdict, then its CPU.
pub fn print_trends(node: &str, warm: &[Point]) {
    let (Some(first), Some(last)) = (warm.first(), warm.last()) else {
        println!("  {node}: fewer than two warm samples, nothing to judge");
        return;
    };
    println!(
        "  {node}: warm {} to {}, {} samples, {} sales taken in the window",
        clock(Duration::from_secs_f64(first.at)),
        clock(Duration::from_secs_f64(last.at)),
        warm.len(),
        last.sales.saturating_sub(first.sales)
    );
    for metric in Metric::ALL {
        let Some(j) = trend::judge(metric, warm) else {
            continue;
        };
        println!(
            "    {:<9} {:>9.1} -> {:>9.1}  {:>+8.2}/min  {:>+9.1} over window (allowance {:>6.1})  {:>12}  {}",
            metric.name(),
            j.first,
            j.last,
            j.per_minute,
            j.growth,
            j.allowance,
            j.bytes_per_sale
                .map_or(String::new(), |b| format!("{b:.0} B/sale")),
            if j.flat { "flat" } else { "GROWS" },
        );
    }
    if let Some(cpu) = trend::judge_cpu(warm) {
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        println!(
            "    {:<9} {:>8.1}% of a core; {} ms/sale in the first half of the window, {} in the second  {}",
            "cpu",
            cpu.percent,
            ms(cpu.first_ms_per_sale),
            ms(cpu.second_ms_per_sale),
            if cpu.flat { "flat" } else { "GROWS" },
        );
    }
}

/// The cashier's figures and the tallies of one district (the hub's copy and the
/// district's own).
pub fn print_tally(district: &str, till: &Till, at_hub: &Tally, at_district: &Tally) {
    println!(
        "  {district}: {} sales and {} receipts acknowledged; {} calls without a definite answer {:?}, \
         {} retries answered duplicate (recorded the first time); {} refused; {} never answered; slowest call {:.1?}",
        till.sales.len(),
        till.receipts.len(),
        till.ambiguous.values().sum::<u64>(),
        till.ambiguous,
        till.duplicate_answers,
        till.refused.len(),
        till.unanswered.len(),
        till.slowest,
    );
    for (whose, t) in [("hub", at_hub), ("own", at_district)] {
        println!(
            "    {whose:<4} copy: {} movements; missing {}, duplicated {}, unknown {}, held without an acknowledgement {}  {}",
            t.held,
            t.missing.len(),
            t.duplicated.len(),
            t.unknown.len(),
            t.unacknowledged_held.len(),
            if t.exact() { "exactly once" } else { "WRONG" },
        );
        let some = |ids: &[String]| ids.iter().take(5).cloned().collect::<Vec<_>>();
        if !t.exact() {
            println!(
                "      missing e.g. {:?}; duplicated e.g. {:?}; unknown e.g. {:?}",
                some(&t.missing),
                t.duplicated.iter().take(5).collect::<Vec<_>>(),
                some(&t.unknown)
            );
        }
    }
}
