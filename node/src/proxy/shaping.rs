//! What one direction of a proxied link does to the bytes it carries: a rate limit
//! (a token bucket that lends at most [`BURST`] of rate after a quiet spell, so a
//! link never bursts more than a few hundred ms of its rate) and a one-way delay
//! applied as a delay line (each chunk is due `delay` after it finished crossing the
//! bottleneck, so the delay adds latency without lowering throughput).
//!
//! It is pure arithmetic on instants, testable without sockets; it must never sleep
//! or touch a socket itself.

use std::time::{Duration, Instant};

/// Idle time a link may bank as credit: the largest burst is this much of its rate
/// (plus one chunk).
pub const BURST: Duration = Duration::from_millis(200);
/// A rate-limited direction reads at most this much of its rate at a time, so a
/// chunk never crosses as one lump (bounded to [`MIN_CHUNK`, `MAX_CHUNK`]).
const CHUNK_TIME: Duration = Duration::from_millis(50);
const MIN_CHUNK: usize = 256;
/// The read size of a direction without a rate limit.
pub const MAX_CHUNK: usize = 16 * 1024;

/// One direction of a link: its rate and its one-way delay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// Bytes a second; `None` is unlimited.
    pub rate_bytes_per_s: Option<u64>,
    /// Time from a byte leaving the bottleneck to its delivery.
    pub one_way_delay: Duration,
}

impl Shape {
    /// A direction that passes bytes as they come.
    pub const CLEAN: Shape = Shape {
        rate_bytes_per_s: None,
        one_way_delay: Duration::ZERO,
    };

    /// The most a direction reads from its socket at once.
    pub fn chunk(&self) -> usize {
        match self.rate_bytes_per_s {
            None => MAX_CHUNK,
            Some(rate) => {
                let per_chunk = rate as f64 * CHUNK_TIME.as_secs_f64();
                (per_chunk as usize).clamp(MIN_CHUNK, MAX_CHUNK)
            }
        }
    }
}

/// When the chunks of one direction cross its bottleneck and when they are due at the
/// far end. One per direction of a connection.
#[derive(Debug, Default)]
pub struct Shaper {
    /// When the bottleneck is free again (the end of the last chunk admitted).
    free_at: Option<Instant>,
}

/// When a chunk admitted by [`Shaper::admit`] has crossed and when it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    /// The chunk has crossed the bottleneck: the reader waits until then before
    /// reading more (that wait is the rate limit).
    pub crossed: Instant,
    /// The chunk is delivered at the far end then: `crossed` plus the delay.
    pub due: Instant,
}

impl Shaper {
    /// Admits `bytes` read at `now` under `shape`.
    pub fn admit(&mut self, bytes: usize, now: Instant, shape: Shape) -> Admitted {
        let crossed = match shape.rate_bytes_per_s {
            None => now,
            Some(rate) => {
                let credit_from = now.checked_sub(BURST).unwrap_or(now);
                let start = self.free_at.map_or(credit_from, |f| f.max(credit_from));
                let took = Duration::from_secs_f64(bytes as f64 / rate.max(1) as f64);
                (start + took).max(now)
            }
        };
        self.free_at = Some(crossed);
        Admitted {
            crossed,
            due: crossed + shape.one_way_delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn a_clean_direction_passes_at_once() {
        let now = Instant::now();
        let a = Shaper::default().admit(1 << 20, now, Shape::CLEAN);
        assert_eq!(a.crossed, now);
        assert_eq!(a.due, now);
        assert_eq!(Shape::CLEAN.chunk(), MAX_CHUNK);
    }

    #[test]
    fn a_steady_stream_crosses_at_the_rate() {
        let shape = Shape {
            rate_bytes_per_s: Some(8_000),
            one_way_delay: Duration::from_millis(300),
        };
        assert_eq!(shape.chunk(), 400);
        let base = Instant::now();
        let mut shaper = Shaper::default();
        // A reader that reads the next chunk as soon as the last has crossed.
        let mut now = base;
        for _ in 0..80 {
            now = shaper.admit(400, now, shape).crossed;
        }
        // 32,000 bytes at 8,000 B/s: 4 s, less at most the banked burst.
        let took = now - base;
        assert!(took >= Duration::from_secs(4) - BURST, "{took:?}");
        assert!(took <= Duration::from_secs(4), "{took:?}");
    }

    #[test]
    fn idle_time_banks_at_most_the_burst() {
        let shape = Shape {
            rate_bytes_per_s: Some(10_000),
            one_way_delay: Duration::ZERO,
        };
        let base = Instant::now();
        let mut shaper = Shaper::default();
        shaper.admit(1_000, base, shape);
        // Ten quiet seconds later, 5,000 bytes at once: only 200 ms of credit.
        let later = at(base, 10_000);
        let a = shaper.admit(5_000, later, shape);
        assert_eq!(a.crossed, at(base, 10_300));
    }

    #[test]
    fn the_delay_is_added_after_the_bottleneck_and_keeps_order() {
        let shape = Shape {
            rate_bytes_per_s: Some(1_000),
            one_way_delay: Duration::from_millis(300),
        };
        let base = Instant::now();
        let mut shaper = Shaper::default();
        let first = shaper.admit(500, base, shape);
        let second = shaper.admit(500, base, shape);
        assert_eq!(first.due, first.crossed + Duration::from_millis(300));
        assert!(second.due > first.due);
        assert_eq!(second.crossed - first.crossed, Duration::from_millis(500));
    }
}
