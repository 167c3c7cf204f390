//! The printed result: one table of measurements beside the reference, then one
//! verdict line per aim.
//!
//! A figure below its aim is reported as `BELOW`, never turned into a failure: this
//! is a report for people, not a gate.

use std::time::Duration;

use crate::measure::Measurement;

/// One line of the table.
pub struct Row {
    pub what: String,
    pub measurement: Measurement,
    /// Durable writes per flush, when known.
    pub writes_per_flush: Option<f64>,
    /// Throughput this row should reach, as a multiple of the reference.
    pub aim: Option<f64>,
}

/// Prints `rows` with their ratio to `reference`, then the verdicts.
pub fn print(reference: &Row, rows: &[Row]) {
    let reference_rate = reference.measurement.ops_per_second();
    let ratio = |row: &Row| {
        if reference_rate > 0.0 {
            row.measurement.ops_per_second() / reference_rate
        } else {
            0.0
        }
    };
    let header = [
        "what",
        "ops",
        "ops/s",
        "mean",
        "p50",
        "p99",
        "vs raw sled",
        "aim",
        "writes/flush",
    ];
    let mut lines = vec![header.map(String::from).to_vec()];
    for row in std::iter::once(reference).chain(rows) {
        let m = &row.measurement;
        lines.push(vec![
            row.what.clone(),
            m.ops().to_string(),
            format!("{:.0}", m.ops_per_second()),
            micros(m.mean()),
            micros(m.quantile(0.50)),
            micros(m.quantile(0.99)),
            format!("{:.2}x", ratio(row)),
            row.aim
                .map(|aim| format!(">= {aim:.2}x"))
                .unwrap_or_else(|| "-".into()),
            row.writes_per_flush
                .map(|w| format!("{w:.2}"))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    print_aligned(&lines);
    println!();
    for row in rows {
        if let Some(aim) = row.aim {
            let verdict = if ratio(row) >= aim { "PASS " } else { "BELOW" };
            println!(
                "{verdict} {}: {:.2}x raw sled (aim >= {aim:.2}x)",
                row.what,
                ratio(row)
            );
        }
    }
}

/// Left-aligns the first column and right-aligns the others.
fn print_aligned(lines: &[Vec<String>]) {
    let columns = lines.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (i, line) in lines.iter().enumerate() {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &width))| match c {
                0 => format!("{cell:<width$}"),
                _ => format!("{cell:>width$}"),
            })
            .collect();
        println!("{}", cells.join(" | "));
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
            println!("{}", rule.join("-|-"));
        }
    }
}

fn micros(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{} us", d.as_micros())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}
