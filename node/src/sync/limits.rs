//! What one peer can make this node remember in a session, and the checks that keep
//! it bounded (invariant 9: "what one peer can make a node remember is bounded").
//!
//! A peer names documents (`Have`, `Bundle`) and claims heads for them; the session
//! keeps those heads, the peer book keeps them on disk. Three limits:
//! - a claim about a document that cannot exist (a ledger period before the Unix
//!   epoch, or starting beyond the session's newest clock plus a margin) is refused on
//!   its own, nothing of it kept, and the session goes on: as for a malformed id, the
//!   peer's other documents still sync;
//! - more than [`MAX_HEADS_PER_DOC`] heads for one document, or more than
//!   [`MAX_DOCS_PER_SESSION`] distinct documents named in one session, ends the
//!   session: no legitimate peer comes near either.
//!
//! It must never read a clock (callers pass their times) and never keep more than
//! [`MAX_DOCS_PER_SESSION`] names.

use std::collections::HashSet;

use crate::domain::doc_id::DocId;
use crate::domain::period::PeriodId;

/// Heads a peer may claim for one document. Only the owner's actors write a
/// document, one actor at a time, so a document has one head; concurrent heads
/// come only from incarnations of the owner that wrote without seeing each other (a
/// data dir lost and started again without restore), a handful in a bad year. 32 is
/// far beyond that, and keeps a claim under 1.1 KB (64 B of hex each on disk).
pub const MAX_HEADS_PER_DOC: usize = 32;

/// Distinct documents a peer may name in one session. A district shares with the
/// hub its catalog, the provincial catalog, the budgets, its orders and the ledger
/// periods not yet settled: one per month it was offline. 256 covers twenty years
/// offline; the heads it lets a peer claim stay under 300 KB.
pub const MAX_DOCS_PER_SESSION: usize = 256;

/// How far past the session's newest clock a ledger period may start: one month, so
/// a hub whose clock is weeks behind still takes a district's new period (a district
/// opens one at most two days ahead of its evidence), at the cost of one more
/// possible document per district.
pub const PERIOD_AHEAD_MS: i64 = 31 * 24 * 3_600_000;

/// Why a claim cannot be about a real document: refused, the session goes on.
pub fn can_exist(doc: &DocId, newest_clock_ms: i64) -> Result<(), String> {
    let Some((_, period)) = doc.ledger_period() else {
        return Ok(());
    };
    if period < PeriodId::FIRST {
        return Err(format!(
            "{doc} cannot exist: it starts before {}, the first period any clock names",
            PeriodId::FIRST
        ));
    }
    if period.start_ms() > newest_clock_ms.saturating_add(PERIOD_AHEAD_MS) {
        return Err(format!(
            "{doc} cannot exist yet: it starts more than 31 days after the newest clock \
             of this session (this node's, or the peer's as it said); check the peer's clock"
        ));
    }
    Ok(())
}

/// The heads claimed for `doc`: over [`MAX_HEADS_PER_DOC`] ends the session.
pub fn check_heads(doc: &str, heads: usize) -> Result<(), String> {
    if heads > MAX_HEADS_PER_DOC {
        return Err(format!(
            "{heads} heads for {doc}: at most {MAX_HEADS_PER_DOC} heads per document"
        ));
    }
    Ok(())
}

/// The documents a peer named in one session.
#[derive(Debug, Default)]
pub struct Named {
    docs: HashSet<DocId>,
    /// Claims whose document id did not parse: each counts as one more document.
    unreadable: usize,
}

impl Named {
    /// Notes that the peer named `doc` (`None`: an id that does not parse); an error
    /// once more than [`MAX_DOCS_PER_SESSION`] distinct ones were named.
    pub fn name(&mut self, doc: Option<&DocId>, raw: &str) -> Result<(), String> {
        if doc.is_some_and(|d| self.docs.contains(d)) {
            return Ok(());
        }
        if self.docs.len() + self.unreadable >= MAX_DOCS_PER_SESSION {
            let shown: String = raw.chars().take(80).collect();
            return Err(format!(
                "a document beyond the first {MAX_DOCS_PER_SESSION} named in this session \
                 ({shown:?}): at most {MAX_DOCS_PER_SESSION} documents per session"
            ));
        }
        match doc {
            Some(d) => {
                self.docs.insert(d.clone());
            }
            None => self.unreadable += 1,
        }
        Ok(())
    }
}

/// At most `max` characters of what a peer wrote, for a log line or the peer book.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}... ({} bytes)", &text[..end], text.len()),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn ledger(period: &str) -> DocId {
        DocId::parse(&format!("ledger/ttu/{period}")).unwrap()
    }

    #[test]
    fn a_period_exists_from_the_epoch_to_a_month_past_the_newest_clock() {
        let now = PeriodId::parse("2026-12").unwrap().start_ms() + 10 * DAY;
        for ok in ["1970-01", "2001-05", "2026-12", "2027-01"] {
            assert!(can_exist(&ledger(ok), now).is_ok(), "{ok}");
        }
        let past = can_exist(&ledger("1969-12"), now).unwrap_err();
        assert!(
            past.contains("cannot exist") && past.contains("1970-01"),
            "{past}"
        );
        let ahead = can_exist(&ledger("2027-02"), now).unwrap_err();
        assert!(ahead.contains("cannot exist yet"), "{ahead}");
        // A peer whose clock said 2028: its periods up to then exist.
        let peer_clock = PeriodId::parse("2028-03").unwrap().start_ms();
        assert!(can_exist(&ledger("2028-03"), peer_clock).is_ok());
        assert!(can_exist(&DocId::Budget, 0).is_ok());
        assert!(can_exist(&ledger("9999-12"), i64::MAX).is_ok());
    }

    #[test]
    fn heads_are_capped_per_document() {
        assert!(check_heads("catalog/ttu", MAX_HEADS_PER_DOC).is_ok());
        let over = check_heads("catalog/ttu", 500).unwrap_err();
        assert!(over.contains("500 heads for catalog/ttu") && over.contains("32 heads"));
    }

    #[test]
    fn a_session_names_at_most_256_documents_counting_each_once() {
        let mut named = Named::default();
        let months = (1990..2100)
            .flat_map(|y| (1..=12).map(move |m| format!("{y}-{m:02}")))
            .take(MAX_DOCS_PER_SESSION - 1);
        for p in months {
            named.name(Some(&ledger(&p)), "").unwrap();
            named.name(Some(&ledger(&p)), "").unwrap();
        }
        named.name(None, "ledger/?").unwrap();
        // Named again: still fine; a new one: over.
        named.name(Some(&ledger("1990-01")), "").unwrap();
        let over = named.name(Some(&DocId::Budget), "budget/province");
        assert!(over.unwrap_err().contains("256 documents"));
        assert!(named.name(None, &"x".repeat(10_000)).unwrap_err().len() < 300);
    }

    #[test]
    fn clipping_keeps_char_boundaries() {
        assert_eq!(clip("short", 10), "short");
        let long = "é".repeat(500);
        let clipped = clip(&long, 100);
        assert!(clipped.starts_with(&"é".repeat(100)) && clipped.ends_with("(1000 bytes)"));
    }
}
