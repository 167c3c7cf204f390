//! The pieces every status page is made of: HTML escaping, the page shell (a little
//! inline CSS, readable on a phone, refreshing itself every 10 s), tables that stack
//! into cards on a narrow screen, and the words for times, ages and rupiah.
//!
//! Every text that reaches a page goes through [`escape`] (or [`Cell`], which
//! escapes): a page must never carry markup that came from a peer or an operator.
//! No script, no link to anything outside the page.

use std::fmt::Write as _;

use crate::domain::wita;

/// Seconds between the page's own refreshes.
pub const REFRESH_SECS: u32 = 10;

/// `text` safe anywhere in HTML: in an element or inside a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
:root{color-scheme:light;--ink:#1d2733;--muted:#5f6b7a;--line:#d9dee5;--bad:#b42318;--badbg:#fde8e6;\
--ok:#067647;--okbg:#e3f6ec;--warn:#8a5a00;--warnbg:#fff3d6;--head:#0b4f71}\
*{box-sizing:border-box}\
body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--ink);background:#f5f7fa}\
header{background:var(--head);color:#fff;padding:14px 18px}\
header h1{margin:0;font-size:1.25rem}\
header p{margin:4px 0 0;opacity:.85;font-size:.85rem}\
main{padding:12px 14px;max-width:1200px;margin:0 auto}\
section{background:#fff;border:1px solid var(--line);border-radius:8px;margin:0 0 14px;padding:10px 12px}\
h2{font-size:1.05rem;margin:2px 0 8px}\
.chips{display:flex;flex-wrap:wrap;gap:8px;margin:0 0 14px;padding:0;list-style:none}\
.chips li{background:#fff;border:1px solid var(--line);border-radius:8px;padding:6px 10px}\
.chips b{font-size:1.15rem;margin-right:4px}\
.scroll{overflow-x:auto}\
table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}\
th{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:var(--muted)}\
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.badge{display:inline-block;border-radius:10px;padding:1px 8px;font-size:.8rem;font-weight:600;margin:1px 2px 1px 0}\
.bad{background:var(--badbg);color:var(--bad)}.ok{background:var(--okbg);color:var(--ok)}\
.warn{background:var(--warnbg);color:var(--warn)}.muted{color:var(--muted)}\
tr.stale td{background:#fff8f7}\
.error{color:var(--bad);font-size:.85rem;word-break:break-word;max-width:28em}\
.bar{background:var(--line);border-radius:4px;height:8px;min-width:80px;margin-top:4px}\
.bar span{display:block;height:8px;border-radius:4px;background:var(--head)}\
.bar span.over{background:var(--bad)}\
.empty{color:var(--muted);margin:4px 0}\
footer{color:var(--muted);font-size:.8rem;text-align:center;padding:4px 0 18px}\
@media (max-width:700px){table.stack thead{display:none}\
table.stack tr{display:block;border:1px solid var(--line);border-radius:8px;margin:0 0 10px;padding:4px 8px}\
table.stack td{display:flex;justify-content:space-between;gap:12px;border:0;padding:3px 0;text-align:right}\
table.stack td::before{content:attr(data-label);color:var(--muted);font-size:.8rem;text-align:left;flex:none;white-space:nowrap}\
.error{max-width:none}}";

/// A whole page: `title` in the head and the header, `subtitle` under it.
pub fn page(title: &str, subtitle: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <title>{title}</title><style>{STYLE}</style></head>\
         <body><header><h1>{title}</h1><p>{subtitle}</p></header><main>{body}</main>\
         <footer>Read-only. Refreshes itself every {REFRESH_SECS} s. Metrics: /metrics</footer>\
         </body></html>\n",
        title = escape(title),
        subtitle = escape(subtitle),
    )
}

/// One table cell: escaped text, or markup this module made.
#[derive(Debug, Clone)]
pub struct Cell {
    html: String,
    class: &'static str,
}

impl Cell {
    /// Plain text (escaped).
    pub fn text(text: impl AsRef<str>) -> Self {
        Cell {
            html: escape(text.as_ref()),
            class: "",
        }
    }

    /// A number, right-aligned.
    pub fn num(n: impl std::fmt::Display) -> Self {
        Cell {
            html: escape(&n.to_string()),
            class: "num",
        }
    }

    /// Markup built by this module's helpers from escaped parts.
    pub fn markup(html: String) -> Self {
        Cell { html, class: "" }
    }

    /// Adds a class to the cell (`num`, `error`, ...).
    pub fn class(mut self, class: &'static str) -> Self {
        self.class = class;
        self
    }
}

/// A badge: a short word with a colour (`ok`, `bad`, `warn`, `muted`).
pub fn badge(kind: &'static str, text: &str) -> String {
    format!("<span class=\"badge {kind}\">{}</span>", escape(text))
}

/// A table row, with the row's id and class (both escaped).
pub struct Row {
    pub id: Option<String>,
    pub class: &'static str,
    pub cells: Vec<Cell>,
}

impl Row {
    pub fn new(cells: Vec<Cell>) -> Self {
        Row {
            id: None,
            class: "",
            cells,
        }
    }
}

/// A section with a heading and a table (or `empty` when there are no rows); the
/// table scrolls sideways on a narrow screen, or with `stack` turns into cards.
pub fn section(id: &str, heading: &str, headers: &[&str], rows: &[Row], empty: &str) -> String {
    let mut out = format!(
        "<section id=\"{}\"><h2>{}</h2>",
        escape(id),
        escape(heading)
    );
    if rows.is_empty() {
        let _ = write!(out, "<p class=\"empty\">{}</p></section>", escape(empty));
        return out;
    }
    out.push_str("<div class=\"scroll\"><table class=\"stack\"><thead><tr>");
    for h in headers {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr");
        if let Some(id) = &row.id {
            let _ = write!(out, " id=\"{}\"", escape(id));
        }
        if !row.class.is_empty() {
            let _ = write!(out, " class=\"{}\"", row.class);
        }
        out.push('>');
        for (i, cell) in row.cells.iter().enumerate() {
            let label = headers.get(i).copied().unwrap_or("");
            let _ = write!(out, "<td data-label=\"{}\"", escape(label));
            if !cell.class.is_empty() {
                let _ = write!(out, " class=\"{}\"", cell.class);
            }
            let _ = write!(out, ">{}</td>", cell.html);
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div></section>");
    out
}

/// Summary figures at the top of a page: (figure, what it counts).
pub fn chips(items: &[(String, &str)]) -> String {
    let mut out = String::from("<ul class=\"chips\">");
    for (figure, label) in items {
        let _ = write!(out, "<li><b>{}</b>{}</li>", escape(figure), escape(label));
    }
    out.push_str("</ul>");
    out
}

/// A unix time in ms as WITA (UTC+8) date and time, `2026-12-08 07:31 WITA`.
pub fn wita_time(unix_ms: i64) -> String {
    let (y, m, d) = wita::civil(wita::day_of(unix_ms));
    let minute_of_day = (unix_ms + 8 * 3_600_000).rem_euclid(86_400_000) / 60_000;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} WITA",
        minute_of_day / 60,
        minute_of_day % 60
    )
}

/// A duration in ms in words: `45 s`, `12 min`, `3 h 20 min`, `2 d 4 h`.
pub fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=119 => format!("{s} s"),
        120..=3599 => format!("{} min", s / 60),
        3600..=172_799 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `when` as an age from `now`, with the exact time as a tooltip; `never` for none.
pub fn ago(now_ms: i64, when: Option<i64>) -> Cell {
    match when.filter(|t| *t > 0) {
        None => Cell::markup(badge("muted", "never")),
        Some(t) => Cell::markup(format!(
            "<span title=\"{}\">{} ago</span>",
            escape(&wita_time(t)),
            escape(&duration(now_ms - t))
        )),
    }
}

/// Rupiah with dots between thousands: `Rp 1.250.000`.
pub fn rupiah(amount: i64) -> String {
    let digits = amount.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(c);
    }
    let sign = if amount < 0 { "-" } else { "" };
    format!("{sign}Rp {grouped}")
}

/// A bar of `used` out of `of` (red past 100 %).
pub fn bar(used: i64, of: i64) -> String {
    let percent = if of > 0 {
        (used.max(0) as f64 / of as f64 * 100.0).min(999.0)
    } else {
        0.0
    };
    let class = if percent > 100.0 {
        " class=\"over\""
    } else {
        ""
    };
    format!(
        "{percent:.0} %<div class=\"bar\"><span{class} style=\"width:{:.0}%\"></span></div>",
        percent.min(100.0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_from_peers_is_escaped_everywhere() {
        let hostile = "<script>alert('x')</script>\"&";
        let row = Row {
            id: Some(hostile.into()),
            class: "",
            cells: vec![Cell::text(hostile), Cell::markup(badge("bad", hostile))],
        };
        let html = section(hostile, hostile, &[hostile], &[row], hostile)
            + &page(hostile, hostile, "")
            + &chips(&[(hostile.into(), hostile)]);
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;"));
    }

    #[test]
    fn words_for_times_and_money() {
        assert_eq!(wita_time(0), "1970-01-01 08:00 WITA");
        assert_eq!(duration(45_000), "45 s");
        assert_eq!(duration(12 * 60_000), "12 min");
        assert_eq!(duration(200 * 60_000), "3 h 20 min");
        assert_eq!(rupiah(1_250_000), "Rp 1.250.000");
        assert_eq!(rupiah(-500), "-Rp 500");
        assert_eq!(rupiah(0), "Rp 0");
    }
}
