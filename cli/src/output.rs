//! How answers reach the operator: aligned tables and `key  value` blocks for people,
//! JSON for scripts, and the number formats both need (rupiah, bytes, durations).
//!
//! It must never change a number's value for display in JSON: amounts stay plain
//! integers there, and only tables get separators and units.

use anyhow::Result;
use serde::Serialize;

/// Output chosen by `--json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A text table: a header row and columns padded to their widest cell.
pub struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Table {
            headers: headers.to_vec(),
            right: vec![false; headers.len()],
            rows: Vec::new(),
        }
    }

    /// Right-aligns the given columns (numbers and amounts).
    pub fn right_align(mut self, columns: &[usize]) -> Self {
        for &c in columns {
            self.right[c] = true;
        }
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.headers.len());
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, without trailing spaces.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = " ".repeat(widths[i] - width(cell));
                if self.right[i] {
                    line.push_str(&pad);
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints the table, or `empty` when it has no rows.
    pub fn print_or(&self, empty: &str) {
        if self.is_empty() {
            println!("{empty}");
        } else {
            print!("{}", self.render());
        }
    }
}

/// A `key  value` block with the values aligned, for single records.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let key_width = pairs.iter().map(|(k, _)| width(k)).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let line = format!("{key}:{}  {value}", " ".repeat(key_width - width(key)));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// Rupiah the Indonesian way: `Rp 45.000`, `-Rp 1.250.000`.
pub fn rupiah(amount: i64) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    format!("{sign}Rp {}", group_thousands(amount.unsigned_abs()))
}

/// Digits grouped by three with dots, as Indonesian writes them.
fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
}

/// A byte count in binary units, e.g. `479.0 KiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A duration in seconds as `3d 4h 05m`, `4h 05m 09s` or `9s`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h {m:02}m")
    } else if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rupiah() {
        assert_eq!(rupiah(0), "Rp 0");
        assert_eq!(rupiah(500), "Rp 500");
        assert_eq!(rupiah(1_000), "Rp 1.000");
        assert_eq!(rupiah(45_000), "Rp 45.000");
        assert_eq!(rupiah(125_000), "Rp 125.000");
        assert_eq!(rupiah(1_250_000), "Rp 1.250.000");
        assert_eq!(rupiah(-75_500), "-Rp 75.500");
        assert_eq!(rupiah(i64::MIN), "-Rp 9.223.372.036.854.775.808");
    }

    #[test]
    fn aligns_tables() {
        let mut t = Table::new(&["SKU", "QTY", "UNIT"]).right_align(&[1]);
        t.row(vec![
            "TTU-CJP-060".into(),
            "7".into(),
            "60 ml bottle".into(),
        ]);
        t.row(vec!["KPG-SEI-250".into(), "120".into(), String::new()]);
        assert_eq!(
            t.render(),
            "SKU          QTY  UNIT\n\
             TTU-CJP-060    7  60 ml bottle\n\
             KPG-SEI-250  120\n"
        );
    }

    #[test]
    fn measures_characters_not_bytes() {
        let mut t = Table::new(&["NAME", "X"]);
        t.row(vec!["Se'i babi (daging asap) – Kupang".into(), "1".into()]);
        t.row(vec!["é".into(), "2".into()]);
        let lines: Vec<usize> = t.render().lines().map(|l| l.chars().count()).collect();
        assert_eq!(lines[1], lines[2]);
    }

    #[test]
    fn aligns_fields() {
        assert_eq!(
            fields(&[
                ("sku", "A".into()),
                ("on hand", "7".into()),
                ("note", String::new())
            ]),
            "sku:      A\non hand:  7\nnote:\n"
        );
    }

    #[test]
    fn formats_bytes_and_durations() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(490_496), "479.0 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(duration(9), "9s");
        assert_eq!(duration(3 * 3600 + 5 * 60 + 9), "3h 05m 09s");
        assert_eq!(duration(2 * 86_400 + 4 * 3600 + 60), "2d 4h 01m");
    }
}
