//! Timing of a repeated operation inside a fixed measurement window.
//!
//! Every worker of one measurement shares the same [`Window`]: operations that start
//! before it (the warm-up) or after it are run but not recorded, so concurrent
//! workers are measured over the same interval. Nothing here knows what is measured.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long to warm up and then measure.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub warmup: Duration,
    pub length: Duration,
}

impl Timing {
    /// A window that opens after the warm-up from now and stays open for the length.
    pub fn open_window(self) -> Window {
        let start = Instant::now() + self.warmup;
        Window {
            start,
            end: start + self.length,
        }
    }

    pub fn total(self) -> Duration {
        self.warmup + self.length
    }
}

/// The interval in which operations are recorded, after a warm-up.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    start: Instant,
    end: Instant,
}

/// What one worker recorded in a window.
#[derive(Debug)]
pub struct Samples {
    latencies: Vec<Duration>,
    last_end: Option<Instant>,
}

impl Samples {
    pub fn new() -> Self {
        Samples {
            latencies: Vec::with_capacity(1 << 16),
            last_end: None,
        }
    }

    /// Records one operation if it started inside the window; false once the window
    /// has closed and the worker should stop.
    pub fn record(&mut self, window: &Window, began: Instant, ended: Instant) -> bool {
        if began >= window.end {
            return false;
        }
        if began >= window.start {
            self.latencies.push(ended - began);
            self.last_end = Some(ended);
        }
        true
    }
}

/// Runs `op` back to back through the warm-up and the window, passing each call's
/// number (from 0).
pub fn run_sync(
    window: Window,
    mut op: impl FnMut(u64) -> anyhow::Result<()>,
) -> anyhow::Result<Samples> {
    let mut samples = Samples::new();
    for n in 0.. {
        let began = Instant::now();
        op(n)?;
        if !samples.record(&window, began, Instant::now()) {
            break;
        }
    }
    Ok(samples)
}

/// Like [`run_sync`], awaiting each call.
pub async fn run_async<F, Fut>(window: Window, mut op: F) -> anyhow::Result<Samples>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut samples = Samples::new();
    for n in 0.. {
        let began = Instant::now();
        op(n).await?;
        if !samples.record(&window, began, Instant::now()) {
            break;
        }
    }
    Ok(samples)
}

/// The operations of every worker of one measurement, merged.
#[derive(Debug)]
pub struct Measurement {
    /// Sorted ascending.
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Measurement {
    /// Merges the samples of the workers that shared `window`. The elapsed time runs
    /// from the window's start to the end of the last recorded operation.
    pub fn merge(window: Window, workers: impl IntoIterator<Item = Samples>) -> Measurement {
        let mut latencies = Vec::new();
        let mut last_end = window.start;
        for samples in workers {
            latencies.extend(samples.latencies);
            last_end = last_end.max(samples.last_end.unwrap_or(window.start));
        }
        latencies.sort_unstable();
        Measurement {
            latencies,
            elapsed: last_end - window.start,
        }
    }

    pub fn ops(&self) -> u64 {
        self.latencies.len() as u64
    }

    pub fn ops_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.ops() as f64 / seconds
        } else {
            0.0
        }
    }

    pub fn mean(&self) -> Duration {
        match self.ops() {
            0 => Duration::ZERO,
            n => self.latencies.iter().sum::<Duration>() / n as u32,
        }
    }

    /// The latency below which a fraction `q` (0 to 1) of operations completed.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = (q * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(warmup_ms: u64, length_ms: u64) -> Timing {
        Timing {
            warmup: Duration::from_millis(warmup_ms),
            length: Duration::from_millis(length_ms),
        }
    }

    #[test]
    fn quantiles_and_rate_of_known_latencies() {
        let window = timing(0, 1000).open_window();
        let samples = Samples {
            latencies: (1..=100).map(Duration::from_micros).collect(),
            last_end: Some(window.start + Duration::from_secs(2)),
        };
        let m = Measurement::merge(window, [samples]);
        assert_eq!(m.ops(), 100);
        assert_eq!(m.quantile(0.5), Duration::from_micros(50));
        assert_eq!(m.quantile(0.99), Duration::from_micros(99));
        assert_eq!(m.mean(), Duration::from_nanos(50_500));
        assert!((m.ops_per_second() - 50.0).abs() < 1e-9);
    }

    /// Operations every 5 ms from the moment the warm-up began, timed by a made-up
    /// clock (a real one made this test fail under load: sleeps overshoot).
    #[test]
    fn warm_up_is_run_but_not_recorded() {
        let began = Instant::now();
        let window = Window {
            start: began + Duration::from_millis(30),
            end: began + Duration::from_millis(60),
        };
        let mut samples = Samples::new();
        let mut calls = 0;
        for k in 0.. {
            let start = began + Duration::from_millis(5 * k);
            calls += 1;
            if !samples.record(&window, start, start + Duration::from_millis(5)) {
                break;
            }
        }
        // Starts at 0, 5, .., 25 ms are the warm-up; 30 .. 55 ms are recorded; the one
        // at 60 ms finds the window closed.
        assert_eq!(samples.latencies, vec![Duration::from_millis(5); 6]);
        assert_eq!(calls, 13);
    }

    /// `run_sync` runs the warm-up: its first call starts before the window opens and
    /// is not recorded, however slow the machine.
    #[test]
    fn run_sync_runs_the_warm_up_unrecorded() {
        let window = timing(20, 20).open_window();
        let mut calls = 0;
        let samples = run_sync(window, |_| {
            calls += 1;
            std::thread::sleep(Duration::from_millis(5));
            Ok(())
        })
        .unwrap();
        assert!(calls >= 2, "{calls} calls");
        assert!(samples.latencies.len() < calls as usize);
    }
}
