//! Reading a node's `/metrics` answer in a test: the value of one sample, the names
//! of every sample, and the metric names a PromQL expression (an alert rule, a
//! dashboard panel) refers to.
//!
//! It must never parse more than the Prometheus text format promises: one sample per
//! line, `name{labels} value`, comments starting with `#`.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use anyhow::Result;

/// The text a node's `/metrics` answers now.
pub async fn metrics(addr: SocketAddr) -> Result<String> {
    crate::http::get_ok(addr, "/metrics").await
}

/// The value of the sample `name` whose labels include every `labels` pair.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(series, _)| {
            let (series_name, rest) = series.split_once('{').unwrap_or((series, ""));
            series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|(_, value)| value.parse().ok())
}

/// Every sample name in `text`.
pub fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// The metric names (`nttmart_*`, `process_*`) a PromQL expression refers to.
pub fn names_in_promql(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("nttmart_") || t.starts_with("process_"))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_by_name_and_labels() {
        let text = "# HELP a_total A.\n# TYPE a_total counter\na_total{peer=\"ttu\",x=\"1\"} 3\na_total{peer=\"sikka\"} 4\nb 1.5\n";
        assert_eq!(sample(text, "a_total", &[("peer", "sikka")]), Some(4.0));
        assert_eq!(sample(text, "b", &[]), Some(1.5));
        assert_eq!(sample(text, "a", &[]), None);
        assert_eq!(sample_names(text).len(), 2);
        assert_eq!(
            names_in_promql("rate(nttmart_x_total{a=\"b\"}[5m]) / process_open_fds"),
            ["nttmart_x_total", "process_open_fds"]
                .map(String::from)
                .into()
        );
    }
}
