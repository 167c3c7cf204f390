//! Scheduled drops of a proxied link: every `min` to `max` (drawn from a seeded RNG,
//! so a seed always gives the same schedule) every connection open through the proxy
//! is cut, as a cellular link that drops does; new connections are accepted at once.
//!
//! It must never decide anything from the clock but when to fire: the waits are a
//! pure function of the schedule, the cutting is the proxy's.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// When a link drops: after a wait drawn uniformly from `min..=max`, again and again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropSchedule {
    pub min: Duration,
    pub max: Duration,
    pub seed: u64,
}

impl DropSchedule {
    /// The waits between drops, the first from the moment the schedule starts.
    pub fn waits(&self) -> impl Iterator<Item = Duration> {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let (min, max) = (self.min, self.max.max(self.min));
        std::iter::repeat_with(move || rng.random_range(min..=max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(seed: u64) -> DropSchedule {
        DropSchedule {
            min: Duration::from_secs(20),
            max: Duration::from_secs(60),
            seed,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let a: Vec<_> = schedule(7).waits().take(50).collect();
        let b: Vec<_> = schedule(7).waits().take(50).collect();
        assert_eq!(a, b);
        let other: Vec<_> = schedule(8).waits().take(50).collect();
        assert_ne!(a, other);
    }

    #[test]
    fn every_wait_is_within_the_bounds() {
        for wait in schedule(1).waits().take(1_000) {
            assert!((Duration::from_secs(20)..=Duration::from_secs(60)).contains(&wait));
        }
        let fixed = DropSchedule {
            min: Duration::from_secs(5),
            max: Duration::from_secs(5),
            seed: 3,
        };
        assert!(fixed.waits().take(10).all(|w| w == Duration::from_secs(5)));
    }
}
