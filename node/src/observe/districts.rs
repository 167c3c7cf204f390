//! The sync state of each peer as the pages and `/metrics` show it: one row per peer
//! from the peer book (pending work computed against the engine), and at the hub one
//! per known district, never-connected ones included, with the freshness of its
//! figures decided by the hub's own rule ([`crate::rpc::HubApi::freshness`]).
//!
//! It must never write: it reads the peer book and the engine's views only.

use std::collections::BTreeMap;

use super::Observed;
use crate::domain::doc_id::NodeId;
use crate::sync::{PeerStatus, Traffic};

/// One peer's sync state.
#[derive(Debug, Clone, Default)]
pub struct SyncRow {
    pub peer: String,
    pub connected: bool,
    pub last_attempt_ms: Option<i64>,
    pub last_success_ms: Option<i64>,
    /// At the hub: whether the district's figures are stale (by `[hub]
    /// stale_after_secs`); `None` at a district.
    pub stale: Option<bool>,
    /// At the hub: time of the newest movement it holds from the district.
    pub as_of_ms: Option<i64>,
    /// Age of the oldest change the peer has not acknowledged.
    pub lag_ms: Option<i64>,
    /// Changes this node holds that the peer has not acknowledged.
    pub to_send: u64,
    /// Changes the peer holds beyond this node's (a catch-up or restore).
    pub to_receive: u64,
    pub last_error: Option<String>,
    /// The peer's clock minus this node's.
    pub clock_offset_ms: Option<i64>,
    pub clock_wrong: bool,
    /// Traffic since this node started.
    pub traffic: Traffic,
    /// Whether the peer book knows the peer (a district never seen is not).
    pub known: bool,
}

impl SyncRow {
    fn from_status(status: &PeerStatus) -> Self {
        SyncRow {
            peer: status.peer.to_string(),
            connected: status.connected,
            last_attempt_ms: status.last_attempt_ms,
            last_success_ms: status.last_success_ms,
            stale: None,
            as_of_ms: None,
            lag_ms: status.docs.iter().filter_map(|d| d.lag_ms).max(),
            to_send: status.docs.iter().map(|d| d.changes_to_send).sum(),
            to_receive: status.docs.iter().map(|d| d.changes_to_receive).sum(),
            last_error: status.last_error.clone(),
            clock_offset_ms: status.clock.map(|c| c.offset_ms),
            clock_wrong: status.clock.is_some_and(|c| c.wrong()),
            traffic: status.traffic,
            known: true,
        }
    }
}

/// Every peer in the peer book (at a district: the hub).
pub fn peer_rows(observed: &Observed) -> Vec<SyncRow> {
    observed
        .book
        .status(&observed.engine)
        .iter()
        .map(SyncRow::from_status)
        .collect()
}

/// At the hub: every known district, and any other district the peer book knows,
/// each with the freshness of its figures.
pub fn district_rows(observed: &Observed) -> Vec<SyncRow> {
    let engine = &observed.engine;
    let mut rows: BTreeMap<String, SyncRow> = peer_rows(observed)
        .into_iter()
        .map(|row| (row.peer.clone(), row))
        .collect();
    for district in engine.known_districts().iter() {
        rows.entry(district.to_string()).or_insert_with(|| SyncRow {
            peer: district.to_string(),
            ..SyncRow::default()
        });
    }
    let as_of: BTreeMap<String, i64> = engine
        .district_summaries()
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.district.to_string(), s.as_of_ms))
        .collect();
    rows.remove(engine.identity().node.as_str());
    rows.into_values()
        .filter_map(|mut row| {
            let id = NodeId::parse(&row.peer).ok()?;
            let as_of_ms = as_of.get(&row.peer).copied().unwrap_or(0);
            let freshness = observed.hub.freshness(&id, as_of_ms);
            row.stale = Some(freshness.stale);
            row.as_of_ms = (as_of_ms > 0).then_some(as_of_ms);
            Some(row)
        })
        .collect()
}

/// The sync table of a page: one row per peer seen, `id="peer-<id>"`, class `stale`
/// when its figures are stale (at the hub), stale ones first; a district's name
/// beside its id. Districts never seen are listed in one line under the table.
pub fn sync_section(heading: &str, rows: &[SyncRow], now_ms: i64) -> String {
    use super::html::{ago, badge, duration, escape, section, Cell, Row};
    let name_of = |id: &str| {
        crate::domain::districts::find(id)
            .map(|d| d.name)
            .unwrap_or_default()
    };
    let hub = rows.iter().any(|r| r.stale.is_some());
    let mut headers = vec!["Peer", "State", "Last sync"];
    if hub {
        headers.push("Figures as of");
    }
    headers.extend(["Lag", "Pending out / in", "Clock offset", "Last error"]);
    let (mut seen, never): (Vec<&SyncRow>, Vec<&SyncRow>) =
        rows.iter().partition(|r| r.known || r.as_of_ms.is_some());
    seen.sort_by_key(|r| (r.stale != Some(true), r.connected, r.peer.clone()));
    let table: Vec<Row> = seen
        .iter()
        .map(|r| {
            let mut state = if r.connected {
                badge("ok", "connected")
            } else if r.last_success_ms.is_some() {
                badge("warn", "offline")
            } else {
                badge("muted", "never synced")
            };
            match r.stale {
                Some(true) => state.push_str(&badge("bad", "stale")),
                Some(false) => state.push_str(&badge("ok", "fresh")),
                None => {}
            }
            let name = name_of(&r.peer);
            let mut cells = vec![
                Cell::markup(format!(
                    "<span><b>{}</b> <span class=\"muted\">{}</span></span>",
                    escape(&r.peer),
                    escape(name)
                )),
                Cell::markup(format!("<span>{state}</span>")).class("state"),
                ago(now_ms, r.last_success_ms),
            ];
            if hub {
                cells.push(ago(now_ms, r.as_of_ms));
            }
            cells.push(match r.lag_ms {
                Some(lag) => Cell::text(duration(lag)).class("num"),
                None => Cell::text("-").class("num"),
            });
            cells.push(Cell::text(format!("{} / {}", r.to_send, r.to_receive)).class("num"));
            cells.push(match r.clock_offset_ms {
                None => Cell::text("-"),
                Some(ms) => {
                    let sign = match ms {
                        ..=-1000 => "-",
                        1000.. => "+",
                        _ => "",
                    };
                    let words = format!("{sign}{}", duration(ms.abs()));
                    if r.clock_wrong {
                        Cell::markup(badge("bad", &words))
                    } else {
                        Cell::text(words)
                    }
                }
            });
            cells.push(match &r.last_error {
                Some(e) => Cell::text(e).class("error"),
                None => Cell::text("-"),
            });
            Row {
                id: Some(format!("peer-{}", r.peer)),
                class: if r.stale == Some(true) { "stale" } else { "" },
                cells,
            }
        })
        .collect();
    let mut html = section(
        "sync",
        heading,
        &headers,
        &table,
        "no district has synced yet",
    );
    if !never.is_empty() {
        let names: Vec<String> = never
            .iter()
            .map(|r| format!("{} ({})", r.peer, name_of(&r.peer)))
            .collect();
        let line = format!(
            "<p id=\"never-synced\" class=\"muted\">Never synced ({}): {}</p>",
            never.len(),
            escape(&names.join(", "))
        );
        // Inside the section, after the table.
        html.truncate(html.len() - "</section>".len());
        html.push_str(&line);
        html.push_str("</section>");
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_last_error_from_a_peer_is_shown_escaped() {
        let row = SyncRow {
            peer: "ttu".into(),
            known: true,
            stale: Some(true),
            last_error: Some("refused: <script>alert('x')</script>".into()),
            clock_offset_ms: Some(-400_000),
            clock_wrong: true,
            ..SyncRow::default()
        };
        let html = sync_section("Districts", &[row], 1_000_000);
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("refused: &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(
            html.contains("<tr id=\"peer-ttu\" class=\"stale\">"),
            "{html}"
        );
        assert!(html.contains("Timor Tengah Utara"), "{html}");
        assert!(html.contains("-6 min"), "{html}");
        let never = SyncRow {
            peer: "alor".into(),
            stale: Some(true),
            ..SyncRow::default()
        };
        let html = sync_section("Districts", &[never], 1_000_000);
        assert!(html.contains("Never synced (1): alor (Alor)"), "{html}");
        assert!(!html.contains("peer-alor"), "{html}");
    }
}
