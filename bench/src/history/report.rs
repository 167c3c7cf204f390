//! The table of `bench history`: every figure beside its aim and the baseline's.

use std::time::Duration;

use super::child::Measured;
use super::{mib, CatchUp, LayoutRun, Options};

const MB: f64 = 1e6;
const GIB: u64 = 1 << 30;

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn rss_cell(m: &Measured) -> String {
    match (m.timed_out, m.explained) {
        (true, Some(e)) => format!(
            ">= {} MiB when stopped (~{} MiB loaded in one batch)",
            mib(m.rss),
            mib(e.rss_loaded)
        ),
        (true, None) => format!(">= {} MiB when stopped", mib(m.rss)),
        _ => format!("{} MiB", mib(m.rss)),
    }
}

fn open_cell(m: &Measured) -> String {
    match (m.timed_out, m.explained) {
        (true, Some(e)) => format!(
            "> {:.0} s: stopped (est. {:.0} s)",
            m.engine_open.as_secs_f64(),
            e.one_by_one_estimate().as_secs_f64()
        ),
        (true, None) => format!("> {:.0} s: stopped", m.engine_open.as_secs_f64()),
        _ => secs(m.open_total()),
    }
}

fn verdict(ok: bool) -> String {
    if ok { "met" } else { "NOT met" }.into()
}

fn district_rss_ok(m: &Measured) -> bool {
    !m.timed_out && m.rss as f64 <= 64.0 * MB
}

fn district_open_ok(m: &Measured) -> bool {
    !m.timed_out && m.open_total() <= Duration::from_millis(500)
}

/// The hub's RSS with `districts` districts: measured, or extrapolated linearly from
/// the hub with one district and with `hub_many.0` (then the second value is false).
pub fn hub_rss(run: &LayoutRun, districts: usize) -> Option<(u64, bool)> {
    let (n, many) = run.hub_many.as_ref()?;
    if *n == districts {
        return Some((many.rss, true));
    }
    let per_district = many.rss.saturating_sub(run.hub_one.rss) as f64 / (*n - 1) as f64;
    Some((
        run.hub_one.rss + (per_district * (districts - 1) as f64) as u64,
        false,
    ))
}

pub fn print(options: &Options, monthly: &LayoutRun, baseline: &LayoutRun) {
    let mut rows: Vec<[String; 5]> = Vec::new();
    if let Some(m0) = &monthly.district_month_end {
        rows.push([
            "district, 31 Oct: RSS after open (a full month open)".into(),
            rss_cell(m0),
            "-".into(),
            "< 64 MB (61.0 MiB)".into(),
            verdict(district_rss_ok(m0)),
        ]);
        rows.push([
            "district, 31 Oct: start-up".into(),
            open_cell(m0),
            "-".into(),
            "< 0.5 s".into(),
            verdict(district_open_ok(m0)),
        ]);
    }
    let (m1, b1) = (&monthly.district_year, &baseline.district_year);
    rows.push([
        format!(
            "district, 1 year ({} sales, to 15 Dec): RSS after open",
            options.sales
        ),
        rss_cell(m1),
        rss_cell(b1),
        "< 64 MB (61.0 MiB)".into(),
        verdict(district_rss_ok(m1)),
    ]);
    rows.push([
        "district, 1 year: start-up (sled open + Engine::open_with)".into(),
        open_cell(m1),
        open_cell(b1),
        "< 0.5 s".into(),
        verdict(district_open_ok(m1)),
    ]);
    if let Some(m2) = &monthly.district_two_years {
        let grew = m2.rss as f64 - m1.rss as f64;
        rows.push([
            format!(
                "district, 2 years ({} sales): RSS after open",
                2 * options.sales
            ),
            format!(
                "{} ({:+.1} vs 1 year)",
                rss_cell(m2),
                grew / (1u64 << 20) as f64
            ),
            "- (not one document)".into(),
            "< 64 MB, as after 1 year".into(),
            verdict(district_rss_ok(m2) && grew <= m1.rss as f64 * 0.05),
        ]);
        let slower = m2.open_total().as_secs_f64() - m1.open_total().as_secs_f64();
        rows.push([
            "district, 2 years: start-up".into(),
            format!("{} ({slower:+.2} s vs 1 year)", open_cell(m2)),
            "-".into(),
            "< 0.5 s, as after 1 year".into(),
            verdict(district_open_ok(m2) && slower <= 0.05 + m1.open_total().as_secs_f64() * 0.1),
        ]);
    }
    let (mc, bc) = (&monthly.catch_up, &baseline.catch_up);
    rows.push([
        format!("catch-up after the 30-day cut ({} sales): wall", mc.sales),
        secs(mc.wall),
        secs(bc.wall),
        "baseline or better".into(),
        verdict(mc.wall.as_secs_f64() <= bc.wall.as_secs_f64() * 1.05),
    ]);
    let per_sale = |b: u64, c: &CatchUp| b as f64 / c.sales.max(1) as f64;
    rows.push([
        "catch-up: bytes of the bundles (B/sale)".into(),
        format!(
            "{} ({:.1})",
            mc.traffic.bundle_bytes,
            per_sale(mc.traffic.bundle_bytes, mc)
        ),
        format!(
            "{} ({:.1})",
            bc.traffic.bundle_bytes,
            per_sale(bc.traffic.bundle_bytes, bc)
        ),
        "baseline or better".into(),
        verdict(mc.traffic.bundle_bytes as f64 <= bc.traffic.bundle_bytes as f64 * 1.05),
    ]);
    rows.push([
        "catch-up: every sync message both ways (B/sale)".into(),
        format!(
            "{} ({:.1})",
            mc.traffic.wire_bytes,
            per_sale(mc.traffic.wire_bytes, mc)
        ),
        format!(
            "{} ({:.1})",
            bc.traffic.wire_bytes,
            per_sale(bc.traffic.wire_bytes, bc)
        ),
        "-".into(),
        String::new(),
    ]);
    rows.push([
        "hub with 1 district: RSS after open".into(),
        rss_cell(&monthly.hub_one),
        rss_cell(&baseline.hub_one),
        "-".into(),
        String::new(),
    ]);
    rows.push([
        "hub with 1 district: start-up".into(),
        open_cell(&monthly.hub_one),
        open_cell(&baseline.hub_one),
        "-".into(),
        String::new(),
    ]);
    if let Some((n, many)) = &monthly.hub_many {
        let baseline_rss = match (hub_rss(baseline, *n), &baseline.hub_many) {
            (Some((rss, true)), _) => format!("{} MiB", mib(rss)),
            (Some((rss, false)), Some((k, _))) => {
                format!("~{} MiB (extrapolated from {k})", mib(rss))
            }
            _ => "-".into(),
        };
        rows.push([
            format!("hub with {n} districts: RSS after open"),
            rss_cell(many),
            baseline_rss,
            "< 1 GiB".into(),
            verdict(!many.timed_out && many.rss <= GIB),
        ]);
        let baseline_open = match &baseline.hub_many {
            Some((k, m)) if *k == *n => open_cell(m),
            Some((k, m)) => format!("{} with {k}", open_cell(m)),
            None => "-".into(),
        };
        rows.push([
            format!("hub with {n} districts: start-up"),
            open_cell(many),
            baseline_open,
            "-".into(),
            String::new(),
        ]);
    }
    let header = [
        "what".to_string(),
        "monthly periods".into(),
        "baseline: 1 document/year".into(),
        "aim".into(),
        String::new(),
    ];
    let widths: Vec<usize> = (0..5)
        .map(|c| {
            rows.iter()
                .chain(std::iter::once(&header))
                .map(|r| r[c].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |r: &[String; 5]| {
        println!(
            "{:<w0$} | {:>w1$} | {:>w2$} | {:<w3$} | {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        )
    };
    line(&header);
    println!("{}", "-".repeat(widths.iter().sum::<usize>() + 14));
    for r in &rows {
        line(r);
    }
}
