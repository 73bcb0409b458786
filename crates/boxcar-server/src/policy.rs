//! Rollout policy: the data a group carries and the pure decisions made from it.
//!
//! Everything here is free of I/O so that each rule has worked examples in its tests: whether a
//! moment lies in a maintenance window, whether a group may grant one more update, and whether
//! failures among granted instances are bad enough to halt the rollout.

use serde::{Deserialize, Serialize};

/// Whether a group hands out updates at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UpdatesMode {
    /// Updates are granted subject to the rest of the policy.
    #[default]
    Enabled,
    /// An operator paused the rollout.
    Paused,
    /// The server halted the rollout itself (error threshold or timeouts); resume to continue.
    Halted,
}

/// Safe mode: until one instance completes the new version, only one update at a time is granted,
/// and timed-out updates halt the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SafeMode {
    /// Canary first.
    #[default]
    On,
    /// Use the period limit from the start.
    Off,
}

/// Days of the week for maintenance windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    /// Days since Monday.
    pub fn index(self) -> u32 {
        self as u32
    }
}

/// A weekly maintenance window: starts at `start` (local `HH:MM`) on each of `days` and lasts
/// `length_minutes` (it may run past midnight and past Sunday).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Days on which the window opens.
    pub days: Vec<Day>,
    /// Opening time, `HH:MM`, in the policy's time zone.
    pub start: String,
    /// Length in minutes.
    pub length_minutes: u32,
}

/// Automatic halt: stop the rollout when failures among granted instances pass a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaltPolicy {
    /// Failures (errors + rollbacks) as a percentage of granted instances that halts the group;
    /// 0 turns automatic halting off.
    pub threshold_percent: u32,
    /// Minimum failures before the percentage is considered, so one early failure among two
    /// canaries can be configured not to halt.
    pub min_failures: u32,
}

impl Default for HaltPolicy {
    fn default() -> Self {
        HaltPolicy {
            threshold_percent: 20,
            min_failures: 1,
        }
    }
}

/// A group's rollout policy, stored as JSON with the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// Enabled, paused by an operator, or halted by the server.
    pub updates: UpdatesMode,
    /// Why the group was halted (shown in the dashboard; cleared on resume).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halted_reason: Option<String>,
    /// Canary first or not.
    pub safe_mode: SafeMode,
    /// IANA time zone the windows are written in.
    pub timezone: String,
    /// Weekly maintenance windows; none means any time.
    pub windows: Vec<Window>,
    /// Updates granted per period at most.
    pub max_updates_per_period: u32,
    /// Period length in minutes.
    pub period_minutes: u32,
    /// An update not finished this many minutes after the grant counts as timed out.
    pub update_timeout_minutes: u32,
    /// Automatic halt thresholds.
    pub halt: HaltPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            updates: UpdatesMode::Enabled,
            halted_reason: None,
            safe_mode: SafeMode::On,
            timezone: "UTC".into(),
            windows: Vec::new(),
            max_updates_per_period: 2,
            period_minutes: 15,
            update_timeout_minutes: 60,
            halt: HaltPolicy::default(),
        }
    }
}

/// A policy that does not make sense.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    /// Unknown IANA zone.
    #[error("validating policy: unknown time zone {0:?}")]
    TimeZone(String),
    /// Window start not `HH:MM`.
    #[error("validating policy: window start {0:?} is not HH:MM")]
    WindowStart(String),
    /// Zero-length window or one with no days.
    #[error("validating policy: window {0} has no days or zero length")]
    EmptyWindow(usize),
    /// Period, limit or timeout of zero.
    #[error("validating policy: {0} must be greater than zero")]
    Zero(&'static str),
}

impl Policy {
    /// Checks every field that could make grants impossible or undefined.
    pub fn validate(&self) -> Result<(), PolicyError> {
        jiff::tz::TimeZone::get(&self.timezone).map_err(|_| PolicyError::TimeZone(self.timezone.clone()))?;
        for (i, w) in self.windows.iter().enumerate() {
            parse_hhmm(&w.start).ok_or_else(|| PolicyError::WindowStart(w.start.clone()))?;
            if w.days.is_empty() || w.length_minutes == 0 {
                return Err(PolicyError::EmptyWindow(i));
            }
        }
        for (v, name) in [
            (self.max_updates_per_period, "max_updates_per_period"),
            (self.period_minutes, "period_minutes"),
            (self.update_timeout_minutes, "update_timeout_minutes"),
        ] {
            if v == 0 {
                return Err(PolicyError::Zero(name));
            }
        }
        Ok(())
    }
}

/// Parses `HH:MM` into minutes after midnight.
pub fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

const WEEK: u32 = 7 * 24 * 60;

/// Whether local minute-of-week `now` (Monday 00:00 = 0) lies in one of `windows`.
///
/// A window opening at minute `w` of the week contains `now` when `(now - w) mod week < length`,
/// which handles windows running past midnight or past Sunday night.
pub fn in_windows_at(windows: &[Window], now_minute_of_week: u32) -> bool {
    if windows.is_empty() {
        return true;
    }
    windows.iter().any(|w| {
        let Some(start) = parse_hhmm(&w.start) else {
            return false;
        };
        w.days.iter().any(|d| {
            let open = d.index() * 24 * 60 + start;
            (now_minute_of_week + WEEK - open) % WEEK < w.length_minutes.min(WEEK)
        })
    })
}

/// Whether unix time `now` lies in the policy's windows, in its time zone.
pub fn in_windows(policy: &Policy, now: i64) -> bool {
    if policy.windows.is_empty() {
        return true;
    }
    let Ok(tz) = jiff::tz::TimeZone::get(&policy.timezone) else {
        return false;
    };
    let Ok(ts) = jiff::Timestamp::from_second(now) else {
        return false;
    };
    let local = ts.to_zoned(tz);
    let day = local.weekday().to_monday_zero_offset() as u32;
    let minute = day * 24 * 60 + local.hour() as u32 * 60 + local.minute() as u32;
    in_windows_at(&policy.windows, minute)
}

/// Counts over one group that the grant decision needs, read inside the grant transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Instances granted within the current period.
    pub granted_in_period: u64,
    /// Updates granted and not finished, granted less than the timeout ago.
    pub in_progress: u64,
    /// Updates granted and not finished, granted more than the timeout ago.
    pub timed_out: u64,
    /// Instances that completed the target version (the store stops counting at one: only
    /// "none yet" matters).
    pub completed_target: u64,
}

/// Why no update was granted this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Withheld {
    /// Updates are paused.
    Paused,
    /// The group halted itself.
    Halted,
    /// Outside every maintenance window.
    OutsideWindow,
    /// The period's quota is used up.
    PeriodLimit,
    /// As many updates as allowed are in progress.
    ConcurrencyLimit,
}

/// The outcome of the policy for one eligible instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantDecision {
    /// Hand out the update.
    Grant,
    /// Not now.
    Withhold(Withheld),
    /// Safe mode saw too many timed-out updates: halt the group (and withhold).
    HaltForTimeouts,
}

/// Decides whether one more update may be granted in a group, given its policy and current counts.
///
/// Follows Nebraska's order: disabled, office hours, per-period limit, concurrency limit, timeouts.
/// In safe mode, until one instance completes the target version the limit is 1.
pub fn decide_grant(policy: &Policy, in_window: bool, stats: GroupStats) -> GrantDecision {
    match policy.updates {
        UpdatesMode::Paused => return GrantDecision::Withhold(Withheld::Paused),
        UpdatesMode::Halted => return GrantDecision::Withhold(Withheld::Halted),
        UpdatesMode::Enabled => {}
    }
    if !in_window {
        return GrantDecision::Withhold(Withheld::OutsideWindow);
    }
    let max = effective_limit(policy, stats.completed_target);
    if policy.safe_mode == SafeMode::On && stats.timed_out >= max {
        return GrantDecision::HaltForTimeouts;
    }
    if stats.granted_in_period >= max {
        return GrantDecision::Withhold(Withheld::PeriodLimit);
    }
    if stats.in_progress >= max {
        return GrantDecision::Withhold(Withheld::ConcurrencyLimit);
    }
    GrantDecision::Grant
}

/// The per-period and concurrency limit in force: the policy's, or 1 in safe mode until one
/// instance completed the target (the canary).
pub fn effective_limit(policy: &Policy, completed_target: u64) -> u64 {
    if policy.safe_mode == SafeMode::On && completed_target == 0 {
        1
    } else {
        u64::from(policy.max_updates_per_period)
    }
}

/// Whether failures among instances granted the target version warrant an automatic halt.
pub fn should_halt(halt: &HaltPolicy, granted: u64, failed: u64) -> bool {
    halt.threshold_percent > 0
        && granted > 0
        && failed >= u64::from(halt.min_failures.max(1))
        && failed * 100 >= u64::from(halt.threshold_percent) * granted
}

/// Start of the period that ends at `now` (exclusive lower bound for counting grants).
pub fn period_start(now: i64, period_minutes: u32) -> i64 {
    now - i64::from(period_minutes) * 60
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(days: &[Day], start: &str, len: u32) -> Window {
        Window {
            days: days.to_vec(),
            start: start.into(),
            length_minutes: len,
        }
    }

    #[test]
    fn weekday_office_hours() {
        let w = [window(
            &[Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri],
            "09:00",
            8 * 60,
        )];
        // Monday 09:00 is minute 540 of the week: open. 16:59 open, 17:00 closed.
        assert!(in_windows_at(&w, 540));
        assert!(in_windows_at(&w, 16 * 60 + 59));
        assert!(!in_windows_at(&w, 17 * 60));
        // Saturday noon closed.
        assert!(!in_windows_at(&w, 5 * 1440 + 720));
    }

    #[test]
    fn windows_wrap_past_midnight_and_sunday() {
        // Sunday 23:00 for two hours: open on Sunday 23:30 and Monday 00:30, closed Monday 01:00.
        let w = [window(&[Day::Sun], "23:00", 120)];
        assert!(in_windows_at(&w, 6 * 1440 + 23 * 60 + 30));
        assert!(in_windows_at(&w, 30));
        assert!(!in_windows_at(&w, 60));
        assert!(in_windows_at(&[], 12345), "no windows = always");
    }

    #[test]
    fn windows_use_the_policy_time_zone() {
        let policy = Policy {
            timezone: "America/New_York".into(),
            windows: vec![window(&[Day::Mon], "09:00", 60)],
            ..Policy::default()
        };
        // 2024-01-08 is a Monday. 14:30 UTC = 09:30 EST → open; 09:30 UTC = 04:30 EST → closed.
        let open = jiff::Timestamp::from_second(1704724200).unwrap(); // 2024-01-08T14:30:00Z
        assert!(in_windows(&policy, open.as_second()));
        assert!(!in_windows(&policy, open.as_second() - 5 * 3600));
    }

    #[test]
    fn policy_validation_names_the_problem() {
        let mut p = Policy {
            timezone: "Mars/Base".into(),
            ..Policy::default()
        };
        assert_eq!(p.validate(), Err(PolicyError::TimeZone("Mars/Base".into())));
        p.timezone = "Europe/Berlin".into();
        p.windows = vec![window(&[Day::Mon], "25:00", 10)];
        assert_eq!(p.validate(), Err(PolicyError::WindowStart("25:00".into())));
        p.windows = vec![window(&[], "01:00", 10)];
        assert_eq!(p.validate(), Err(PolicyError::EmptyWindow(0)));
        p.windows.clear();
        p.period_minutes = 0;
        assert_eq!(p.validate(), Err(PolicyError::Zero("period_minutes")));
    }

    #[test]
    fn grant_decision_worked_examples() {
        let open = Policy {
            safe_mode: SafeMode::Off,
            max_updates_per_period: 3,
            ..Policy::default()
        };
        let s = |granted, in_progress, timed_out, completed| GroupStats {
            granted_in_period: granted,
            in_progress,
            timed_out,
            completed_target: completed,
        };
        assert_eq!(decide_grant(&open, true, s(2, 2, 0, 0)), GrantDecision::Grant);
        assert_eq!(
            decide_grant(&open, true, s(3, 0, 0, 0)),
            GrantDecision::Withhold(Withheld::PeriodLimit)
        );
        assert_eq!(
            decide_grant(&open, true, s(0, 3, 0, 0)),
            GrantDecision::Withhold(Withheld::ConcurrencyLimit)
        );
        assert_eq!(
            decide_grant(&open, false, s(0, 0, 0, 0)),
            GrantDecision::Withhold(Withheld::OutsideWindow)
        );
        // Timeouts halt only in safe mode.
        assert_eq!(decide_grant(&open, true, s(0, 0, 9, 0)), GrantDecision::Grant);
        let paused = Policy {
            updates: UpdatesMode::Paused,
            ..open.clone()
        };
        assert_eq!(
            decide_grant(&paused, true, s(0, 0, 0, 0)),
            GrantDecision::Withhold(Withheld::Paused)
        );

        // Safe mode: one canary until one instance completed, then the period limit.
        let safe = Policy {
            safe_mode: SafeMode::On,
            ..open.clone()
        };
        assert_eq!(decide_grant(&safe, true, s(0, 0, 0, 0)), GrantDecision::Grant);
        assert_eq!(
            decide_grant(&safe, true, s(1, 1, 0, 0)),
            GrantDecision::Withhold(Withheld::PeriodLimit)
        );
        assert_eq!(decide_grant(&safe, true, s(1, 0, 0, 1)), GrantDecision::Grant);
        assert_eq!(decide_grant(&safe, true, s(0, 0, 1, 0)), GrantDecision::HaltForTimeouts);
    }

    #[test]
    fn halt_threshold_worked_examples() {
        let h = HaltPolicy {
            threshold_percent: 20,
            min_failures: 2,
        };
        assert!(!should_halt(&h, 10, 1), "one failure is below min_failures");
        assert!(should_halt(&h, 10, 2), "2 of 10 = 20 %");
        assert!(!should_halt(&h, 11, 2), "2 of 11 < 20 %");
        assert!(
            !should_halt(
                &HaltPolicy {
                    threshold_percent: 0,
                    min_failures: 1
                },
                1,
                1
            ),
            "off"
        );
        assert!(should_halt(
            &HaltPolicy {
                threshold_percent: 100,
                min_failures: 1
            },
            1,
            1
        ));
    }

    #[test]
    fn period_counting() {
        assert_eq!(period_start(10_000, 60), 10_000 - 3600);
    }
}
