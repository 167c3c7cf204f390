//! The soak's link plan: for each district, a seeded timeline of its link to the hub
//! going up, stalling (bytes held, connections open: the dead link that sends no FIN),
//! being cut (connections dropped, new ones refused) and healing, with spells of
//! seconds to a couple of minutes.
//!
//! It is drawn whole from the seed before the run starts, so the same seed gives the
//! same plan whatever the machine's speed. It must never depend on what the nodes do.

use std::fmt;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What happens to one district's link at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAction {
    /// Bytes are held back both ways; connections stay open.
    Stall,
    /// Every connection is dropped and new ones are refused.
    Cut,
    /// The link carries bytes again.
    Heal,
}

impl fmt::Display for LinkAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkAction::Stall => "stall",
            LinkAction::Cut => "cut",
            LinkAction::Heal => "heal",
        })
    }
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEvent {
    /// From the start of the run.
    pub at: Duration,
    pub district: String,
    pub action: LinkAction,
}

/// Seconds a link stays up between troubles (the first spell is shorter, so a short
/// run sees trouble too).
const UP_SECS: std::ops::RangeInclusive<u64> = 20..=120;
const FIRST_UP_SECS: std::ops::RangeInclusive<u64> = 5..=45;
/// Seconds a stall lasts: from shorter than any keepalive to well beyond 30 s.
const STALL_SECS: std::ops::RangeInclusive<u64> = 5..=90;
/// Seconds a cut lasts: long enough to push a district into its reconnect backoff.
const CUT_SECS: std::ops::RangeInclusive<u64> = 5..=120;
/// Percent of troubles that are stalls (the rest are cuts).
const STALL_PERCENT: u32 = 45;

/// The plan for `districts` over `length`, sorted by time. Each district draws from
/// its own generator (seed and district index), so adding a district leaves the
/// others' plans as they were. Every trouble that starts before `length` is healed,
/// at the latest at `length`.
pub fn plan(seed: u64, districts: &[String], length: Duration) -> Vec<LinkEvent> {
    let mut events = Vec::new();
    for (index, district) in districts.iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(seed ^ (0x9e37_79b9_7f4a_7c15 * (index as u64 + 1)));
        let mut at = Duration::from_secs(rng.random_range(FIRST_UP_SECS));
        while at < length {
            let (action, spell) = if rng.random_ratio(STALL_PERCENT, 100) {
                (LinkAction::Stall, rng.random_range(STALL_SECS))
            } else {
                (LinkAction::Cut, rng.random_range(CUT_SECS))
            };
            events.push(LinkEvent {
                at,
                district: district.clone(),
                action,
            });
            at = (at + Duration::from_secs(spell)).min(length);
            events.push(LinkEvent {
                at,
                district: district.clone(),
                action: LinkAction::Heal,
            });
            at += Duration::from_secs(rng.random_range(UP_SECS));
        }
    }
    events.sort_by_key(|e| e.at);
    events
}

/// What a district's link is doing after `events` (in order): `up`, `stalled` or `cut`.
pub fn state_after<'a>(events: impl IntoIterator<Item = &'a LinkEvent>) -> &'static str {
    match events.into_iter().last().map(|e| e.action) {
        None | Some(LinkAction::Heal) => "up",
        Some(LinkAction::Stall) => "stalled",
        Some(LinkAction::Cut) => "cut",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn districts() -> Vec<String> {
        ["alor", "sikka", "ttu"].map(String::from).to_vec()
    }

    #[test]
    fn the_same_seed_gives_the_same_plan() {
        let length = Duration::from_secs(30 * 60);
        assert_eq!(plan(7, &districts(), length), plan(7, &districts(), length));
        assert_ne!(plan(7, &districts(), length), plan(8, &districts(), length));
    }

    #[test]
    fn every_trouble_is_healed_within_the_run() {
        let length = Duration::from_secs(30 * 60);
        for seed in 0..50 {
            let events = plan(seed, &districts(), length);
            for district in districts() {
                let own: Vec<&LinkEvent> =
                    events.iter().filter(|e| e.district == district).collect();
                assert!(own.len() >= 2, "seed {seed}: {district} has no trouble");
                for pair in own.chunks(2) {
                    assert_ne!(pair[0].action, LinkAction::Heal, "seed {seed}");
                    assert_eq!(pair[1].action, LinkAction::Heal, "seed {seed}");
                    assert!(pair[0].at <= pair[1].at && pair[1].at <= length);
                }
                assert_eq!(state_after(own), "up");
            }
        }
    }

    #[test]
    fn a_plan_has_both_kinds_of_trouble() {
        let events = plan(1, &districts(), Duration::from_secs(30 * 60));
        assert!(events.iter().any(|e| e.action == LinkAction::Stall));
        assert!(events.iter().any(|e| e.action == LinkAction::Cut));
    }
}
