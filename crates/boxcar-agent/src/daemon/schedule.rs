//! When to check next (pure). update_engine's rules, with the numbers configurable so tests
//! can run them in seconds:
//!
//! * first check `initial` after start (7 min), fuzzed by ±`fuzz`/2;
//! * then every `interval` (45 min) ± `fuzz`/2 (fuzz 10 min → 40–50 min);
//! * the server's `PollInterval` replaces `interval` for the next check;
//! * after `n` consecutive failed checks (HTTP errors, unreachable, garbage): `interval · 2ⁿ`
//!   capped at `max_backoff` (4 h), fuzzed by ±¼ of itself, so a fleet that lost its server
//!   does not come back in lock-step.
//!
//! Randomness is passed in as `jitter` ∈ [0, 1), so the arithmetic is tested exactly.

use std::time::Duration;

/// The timing knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Delay before the first check after start.
    pub initial: Duration,
    /// Regular interval between checks.
    pub interval: Duration,
    /// Total width of the random window around a regular check.
    pub fuzz: Duration,
    /// Longest delay after failures.
    pub max_backoff: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            initial: Duration::from_secs(7 * 60),
            interval: Duration::from_secs(45 * 60),
            fuzz: Duration::from_secs(10 * 60),
            max_backoff: Duration::from_secs(4 * 3600),
        }
    }
}

/// `value` moved uniformly within `value ± range/2`, never below zero: jitter 0 → low end,
/// 0.5 → `value`, →1 → high end.
///
/// `fuzz(600 s, 60 s, 0.0)` = 570 s; `fuzz(600 s, 60 s, 0.5)` = 600 s; `fuzz(10 s, 60 s, 0.0)` = 0 s.
pub fn fuzz(value: Duration, range: Duration, jitter: f64) -> Duration {
    let j = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let low = value.as_secs_f64() - range.as_secs_f64() / 2.0;
    Duration::from_secs_f64((low + range.as_secs_f64() * j).max(0.0))
}

/// Delay before the first check.
pub fn first_delay(t: &Timing, jitter: f64) -> Duration {
    fuzz(t.initial, t.fuzz.min(t.initial), jitter)
}

/// The un-fuzzed delay after `failures` consecutive failed checks: `interval · 2^failures`,
/// capped at `max_backoff` (and never below `interval`).
///
/// With 45 min and a 4 h cap: 1 → 90 min, 2 → 180 min, 3 → 240 min (cap), 30 → 240 min.
pub fn backoff(t: &Timing, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.min(31));
    t.interval.saturating_mul(factor).min(t.max_backoff.max(t.interval))
}

/// Delay before the next check after one finished.
///
/// * `failures` = consecutive failed checks so far (0 after a success);
/// * `poll_interval` = the server's `PollInterval` seconds from the last good answer.
pub fn next_delay(t: &Timing, failures: u32, poll_interval: Option<u32>, jitter: f64) -> Duration {
    if failures > 0 {
        let d = backoff(t, failures);
        return fuzz(d, d / 2, jitter);
    }
    let base = match poll_interval {
        Some(s) if s > 0 => Duration::from_secs(u64::from(s)),
        _ => t.interval,
    };
    fuzz(base, t.fuzz.min(base), jitter)
}

/// A small, seedable generator for the jitter (xorshift64*): no dependency, good enough to
/// spread check times; not for anything secret.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    /// Seeded from the clock and the process id (different on every node and start).
    pub fn from_entropy() -> Jitter {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Jitter::seeded(t ^ (u64::from(std::process::id()) << 32))
    }

    /// A fixed seed (tests).
    pub fn seeded(seed: u64) -> Jitter {
        Jitter(seed.max(1))
    }

    /// The next value in [0, 1).
    pub fn sample(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60;

    fn secs(d: Duration) -> u64 {
        d.as_secs_f64().round() as u64
    }

    #[test]
    fn fuzz_worked_examples() {
        let s = Duration::from_secs;
        assert_eq!(fuzz(s(600), s(60), 0.0), s(570));
        assert_eq!(fuzz(s(600), s(60), 0.5), s(600));
        assert_eq!(fuzz(s(600), s(60), 0.75), s(615));
        assert_eq!(fuzz(s(10), s(60), 0.0), s(0), "never negative");
        assert_eq!(fuzz(s(600), s(60), f64::NAN), s(600));
        assert_eq!(fuzz(s(600), s(60), 7.0), s(630), "clamped to the window");
    }

    #[test]
    fn update_engine_defaults() {
        let t = Timing::default();
        // First check: 7 min ± 5 min (the 10-min window, as wide as 7 min allows... here 10 > 7 → 7).
        assert_eq!(secs(first_delay(&t, 0.5)), 7 * MIN);
        assert_eq!(secs(first_delay(&t, 0.0)), 7 * MIN - 210);
        // Regular: 45 min ± 5 min.
        assert_eq!(secs(next_delay(&t, 0, None, 0.0)), 40 * MIN);
        assert_eq!(secs(next_delay(&t, 0, None, 0.5)), 45 * MIN);
        assert_eq!(secs(next_delay(&t, 0, None, 0.999_999)), 50 * MIN);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let t = Timing::default();
        let b: Vec<u64> = (0..6).map(|n| secs(backoff(&t, n)) / MIN).collect();
        assert_eq!(b, [45, 90, 180, 240, 240, 240]);
        assert_eq!(secs(backoff(&t, u32::MAX)) / MIN, 240, "no overflow");
        // 90 min ± 22.5 min after the first failure.
        assert_eq!(secs(next_delay(&t, 1, None, 0.0)), 90 * MIN - 1350);
        assert_eq!(secs(next_delay(&t, 1, None, 0.5)), 90 * MIN);
        // The server's PollInterval does not shorten a backoff.
        assert_eq!(secs(next_delay(&t, 3, Some(60), 0.5)), 240 * MIN);
    }

    #[test]
    fn poll_interval_replaces_the_interval() {
        let t = Timing::default();
        assert_eq!(secs(next_delay(&t, 0, Some(1800), 0.5)), 30 * MIN);
        // A short PollInterval gets a proportionally narrow window: 120 s ± 60 s.
        assert_eq!(secs(next_delay(&t, 0, Some(120), 0.0)), 60);
        assert_eq!(secs(next_delay(&t, 0, Some(0), 0.5)), 45 * MIN, "0 means unset");
    }

    #[test]
    fn jitter_is_in_range_and_spread() {
        let mut j = Jitter::seeded(42);
        let v: Vec<f64> = (0..1000).map(|_| j.sample()).collect();
        assert!(v.iter().all(|x| (0.0..1.0).contains(x)));
        let low = v.iter().filter(|x| **x < 0.5).count();
        assert!((400..600).contains(&low), "{low}");
        assert_ne!(Jitter::seeded(1).sample(), Jitter::seeded(2).sample());
    }
}
