//! Weekly maintenance windows: parsing (locksmith's `Thu 04:00` + `1h30m`, plus day sets) and
//! pure arithmetic ("inside now?", "when does the next one open?") in a chosen time zone.
//!
//! A window opens when the wall clock of its time zone reads `start` on one of its days and
//! stays open for `length` of real (elapsed) time. That rule settles the awkward cases:
//!
//! * crossing midnight or the week boundary: `Sun 23:00` + `2h` is open until Monday 01:00;
//! * a start inside a spring-forward gap (02:30 on the day 02:00 jumps to 03:00) opens at the
//!   same offset after the gap, 03:30 (jiff's "compatible" disambiguation, as RFC 5545 does);
//! * a start inside a fall-back fold (02:30 happens twice) opens at the first 02:30;
//! * the length is elapsed time, so a `2h` window over a DST change is still two real hours.
//!
//! Everything here takes `now` as a parameter: no clock is read, so the functions are tested
//! with worked examples.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::fmt;
use std::time::Duration;

/// The longest window accepted: a week (a longer window is "always open", say so explicitly by
/// configuring no window at all).
pub const MAX_LENGTH: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a window or duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// The day part is not a day name, a `Mon-Fri` range or a `Mon,Wed` list.
    #[error("parsing window days {0:?}: expected a day (Mon..Sun), a range like Mon-Fri or a list like Sat,Sun")]
    Days(String),
    /// The start is not `HH:MM`.
    #[error("parsing window start time {0:?}: expected HH:MM (24-hour clock)")]
    Start(String),
    /// The length is not a Go-style duration.
    #[error("parsing window length {0:?}: expected a duration like 1h30m, 45m or 2h")]
    Length(String),
    /// The length is zero or longer than a week.
    #[error("window length {0:?} out of range: must be more than 0 and at most 168h")]
    LengthRange(String),
    /// Wrong number of fields.
    #[error("parsing window {0:?}: expected \"[DAYS] HH:MM LENGTH\", e.g. \"Thu 04:00 1h30m\"")]
    Shape(String),
    /// The time zone is not known to the system's tz database.
    #[error("unknown time zone {0:?}: use an IANA name like Europe/Berlin, UTC or localtime")]
    TimeZone(String),
}

/// A set of weekdays (bit 0 = Monday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaySet(u8);

impl DaySet {
    /// Every day of the week (locksmith's start without a day name: a daily window).
    pub const ALL: DaySet = DaySet(0x7f);

    /// Whether `day` is in the set.
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.to_monday_zero_offset()) != 0
    }

    /// Parses `Thu`, `thursday`, `Mon-Fri` (ranges may wrap: `Fri-Mon`), `Sat,Sun` or `daily`.
    pub fn parse(s: &str) -> Result<DaySet, WindowError> {
        let err = || WindowError::Days(s.to_string());
        if s.eq_ignore_ascii_case("daily") {
            return Ok(DaySet::ALL);
        }
        let mut bits = 0u8;
        for part in s.split(',') {
            let part = part.trim();
            if let Some((a, b)) = part.split_once('-') {
                let a = day_index(a).ok_or_else(err)?;
                let b = day_index(b).ok_or_else(err)?;
                let mut i = a;
                loop {
                    bits |= 1 << i;
                    if i == b {
                        break;
                    }
                    i = (i + 1) % 7;
                }
            } else {
                bits |= 1 << day_index(part).ok_or_else(err)?;
            }
        }
        Ok(DaySet(bits))
    }
}

impl fmt::Display for DaySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == DaySet::ALL {
            return f.write_str("daily");
        }
        let names: Vec<&str> = (0..7)
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| DAY_NAMES[i])
            .collect();
        f.write_str(&names.join(","))
    }
}

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn day_index(s: &str) -> Option<u8> {
    let s = s.trim().to_ascii_lowercase();
    if s.len() < 3 {
        return None;
    }
    let full = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    full.iter().position(|d| d.starts_with(&s)).map(|i| i as u8)
}

/// One weekly (or daily) maintenance window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Days on which the window opens.
    pub days: DaySet,
    /// Wall-clock opening time in the schedule's time zone.
    pub start: Time,
    /// How long it stays open (elapsed time).
    pub length: Duration,
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:02}:{:02} {}",
            self.days,
            self.start.hour(),
            self.start.minute(),
            format_duration(self.length)
        )
    }
}

impl Window {
    /// Parses locksmith's pair: `LOCKSMITHD_REBOOT_WINDOW_START` (`Thu 04:00` or `04:00` for
    /// daily) and `LOCKSMITHD_REBOOT_WINDOW_LENGTH` (`1h30m`).
    pub fn from_locksmith(start: &str, length: &str) -> Result<Window, WindowError> {
        let fields: Vec<&str> = start.split_whitespace().collect();
        let (days, time) = match fields.as_slice() {
            [t] => (DaySet::ALL, *t),
            [d, t] => (DaySet::parse(d)?, *t),
            _ => return Err(WindowError::Shape(start.to_string())),
        };
        Ok(Window {
            days,
            start: parse_hhmm(time)?,
            length: parse_length(length)?,
        })
    }

    /// Parses one `[DAYS] HH:MM LENGTH` entry, e.g. `Thu 04:00 1h30m`, `Mon-Fri 22:00 2h`,
    /// `03:00 30m` (daily).
    pub fn parse(s: &str) -> Result<Window, WindowError> {
        let fields: Vec<&str> = s.split_whitespace().collect();
        let (days, time, length) = match fields.as_slice() {
            [t, l] if t.contains(':') => (DaySet::ALL, *t, *l),
            [d, t, l] => (DaySet::parse(d)?, *t, *l),
            _ => return Err(WindowError::Shape(s.to_string())),
        };
        Ok(Window {
            days,
            start: parse_hhmm(time)?,
            length: parse_length(length)?,
        })
    }

    /// When this window opens on `date` (in `tz`), if `date` is one of its days.
    pub fn start_on(&self, date: Date, tz: &TimeZone) -> Option<Timestamp> {
        if !self.days.contains(date.weekday()) {
            return None;
        }
        // Compatible disambiguation: gap → later, fold → earlier (see module docs).
        date.to_datetime(self.start)
            .to_zoned(tz.clone())
            .ok()
            .map(|z| z.timestamp())
    }

    /// The occurrence `[open, close)` that contains `now`, if any.
    pub fn containing(&self, now: Timestamp, tz: &TimeZone) -> Option<(Timestamp, Timestamp)> {
        let today = now.to_zoned(tz.clone()).date();
        // A window is at most a week long; eight days back covers DST shifts as well.
        (0..=8i64).find_map(|back| {
            let date = today.checked_sub(jiff::Span::new().days(back)).ok()?;
            let open = self.start_on(date, tz)?;
            let close = open.checked_add(signed(self.length)).ok()?;
            (open <= now && now < close).then_some((open, close))
        })
    }

    /// The first opening strictly after `now`.
    pub fn next_start_after(&self, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let today = now.to_zoned(tz.clone()).date();
        (0..=8i64).find_map(|ahead| {
            let date = today.checked_add(jiff::Span::new().days(ahead)).ok()?;
            self.start_on(date, tz).filter(|open| *open > now)
        })
    }
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// Parses `HH:MM` (24-hour clock).
pub fn parse_hhmm(s: &str) -> Result<Time, WindowError> {
    let err = || WindowError::Start(s.to_string());
    let (h, m) = s.split_once(':').ok_or_else(err)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(err());
    }
    let h: i8 = h.parse().map_err(|_| err())?;
    let m: i8 = m.parse().map_err(|_| err())?;
    Time::new(h, m, 0, 0).map_err(|_| err())
}

/// Parses a Go-style duration as locksmith does (`1h30m`, `90m`, `2h`, `45s`); whole numbers
/// only, bounded to `(0, 168h]` for window lengths.
pub fn parse_length(s: &str) -> Result<Duration, WindowError> {
    let d = parse_duration(s)?;
    if d.is_zero() || d > MAX_LENGTH {
        return Err(WindowError::LengthRange(s.to_string()));
    }
    Ok(d)
}

/// Parses a Go-style duration (`1h30m`, `10s`), whole numbers of h/m/s only.
pub fn parse_duration(s: &str) -> Result<Duration, WindowError> {
    let err = || WindowError::Length(s.to_string());
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(err());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit = match rest.bytes().next() {
            Some(b'h') => 3600,
            Some(b'm') => 60,
            Some(b's') => 1,
            _ => return Err(err()),
        };
        rest = &rest[1..];
        total = total
            .checked_add(n.checked_mul(unit).ok_or_else(err)?)
            .ok_or_else(err)?;
    }
    Ok(Duration::from_secs(total))
}

/// Formats a duration the way it is written in config (`1h30m`).
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if sec > 0 || out.is_empty() {
        out += &format!("{sec}s");
    }
    out
}

/// Resolves a time zone name: `UTC`, `localtime` (the system's /etc/localtime) or an IANA name.
pub fn time_zone(name: &str) -> Result<TimeZone, WindowError> {
    match name {
        "UTC" | "utc" | "Etc/UTC" => Ok(TimeZone::UTC),
        "localtime" => TimeZone::try_system().map_err(|_| WindowError::TimeZone(name.to_string())),
        _ => TimeZone::get(name).map_err(|_| WindowError::TimeZone(name.to_string())),
    }
}

/// All windows of a node plus their time zone. No windows means "any time".
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The windows; they may overlap.
    pub windows: Vec<Window>,
    /// The zone their wall-clock times are in.
    pub tz: TimeZone,
    /// The zone's name as configured (for status output).
    pub tz_name: String,
}

/// Whether a reboot may start now, as far as windows go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// No windows configured.
    Always,
    /// Inside a window that closes at this instant.
    Open {
        /// End of the latest-closing window containing now.
        closes: Timestamp,
    },
    /// Outside every window; the next opens then.
    Closed {
        /// Next opening (None only if arithmetic overflowed the calendar).
        opens: Option<Timestamp>,
    },
}

impl Schedule {
    /// A schedule without windows.
    pub fn always() -> Schedule {
        Schedule {
            windows: Vec::new(),
            tz: TimeZone::UTC,
            tz_name: "UTC".into(),
        }
    }

    /// Inside a window at `now`?
    pub fn gate(&self, now: Timestamp) -> Gate {
        if self.windows.is_empty() {
            return Gate::Always;
        }
        let closes = self
            .windows
            .iter()
            .filter_map(|w| w.containing(now, &self.tz).map(|(_, c)| c))
            .max();
        match closes {
            Some(closes) => Gate::Open { closes },
            None => Gate::Closed {
                opens: self.next_start_after(now),
            },
        }
    }

    /// The earliest opening of any window strictly after `now`.
    pub fn next_start_after(&self, now: Timestamp) -> Option<Timestamp> {
        self.windows
            .iter()
            .filter_map(|w| w.next_start_after(now, &self.tz))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn sched(windows: &[&str], tz: &str) -> Schedule {
        Schedule {
            windows: windows.iter().map(|w| Window::parse(w).unwrap()).collect(),
            tz: time_zone(tz).unwrap(),
            tz_name: tz.into(),
        }
    }

    #[test]
    fn locksmith_syntax() {
        let w = Window::from_locksmith("Thu 04:00", "1h30m").unwrap();
        assert_eq!(w.days, DaySet::parse("Thu").unwrap());
        assert_eq!(w.start, Time::constant(4, 0, 0, 0));
        assert_eq!(w.length, Duration::from_secs(5400));
        assert_eq!(w.to_string(), "Thu 04:00 1h30m");
        let daily = Window::from_locksmith("14:00", "30m").unwrap();
        assert_eq!(daily.days, DaySet::ALL);
        assert_eq!(daily.to_string(), "daily 14:00 30m");
    }

    #[test]
    fn malformed_windows_are_errors() {
        assert!(matches!(
            Window::from_locksmith("Thx 04:00", "1h"),
            Err(WindowError::Days(_))
        ));
        assert!(matches!(
            Window::from_locksmith("Thu 25:00", "1h"),
            Err(WindowError::Start(_))
        ));
        assert!(matches!(
            Window::from_locksmith("Thu 4", "1h"),
            Err(WindowError::Start(_))
        ));
        assert!(matches!(
            Window::from_locksmith("Thu 04:00", "1x"),
            Err(WindowError::Length(_))
        ));
        assert!(matches!(
            Window::from_locksmith("Thu 04:00", "0m"),
            Err(WindowError::LengthRange(_))
        ));
        assert!(matches!(
            Window::from_locksmith("Thu 04:00", "169h"),
            Err(WindowError::LengthRange(_))
        ));
        assert!(matches!(Window::from_locksmith("", "1h"), Err(WindowError::Shape(_))));
        assert!(matches!(Window::parse("Thu 04:00"), Err(WindowError::Shape(_))));
        assert!(matches!(Window::parse("04:00 1y"), Err(WindowError::Length(_))));
        assert!(matches!(
            Window::parse("Thu 04:00 1h extra"),
            Err(WindowError::Shape(_))
        ));
        assert!(matches!(parse_duration("99999999999h"), Err(WindowError::Length(_))));
        assert!(matches!(time_zone("Mars/Olympus"), Err(WindowError::TimeZone(_))));
    }

    #[test]
    fn day_sets() {
        let wd = DaySet::parse("Mon-Fri").unwrap();
        assert!(wd.contains(Weekday::Friday) && !wd.contains(Weekday::Saturday));
        let wrap = DaySet::parse("Fri-Mon").unwrap();
        assert_eq!(wrap.to_string(), "Mon,Fri,Sat,Sun");
        assert_eq!(DaySet::parse("sat,SUNDAY").unwrap().to_string(), "Sat,Sun");
        assert_eq!(DaySet::parse("daily").unwrap(), DaySet::ALL);
        for w in [
            "daily 14:00 30m",
            "Mon,Fri,Sat,Sun 04:05 1h30m",
            "Wed 00:00 168h",
            "Tue 23:59 1h0m5s",
        ] {
            let parsed = Window::parse(w).unwrap();
            assert_eq!(Window::parse(&parsed.to_string()).unwrap(), parsed, "{w}");
        }
    }

    /// `Sun 23:00 2h` in UTC: open Sunday 23:30 and Monday 00:30 (crosses midnight and the week
    /// boundary), closed Monday 01:00 sharp, next opening the following Sunday.
    #[test]
    fn crossing_midnight_and_week_boundary() {
        let s = sched(&["Sun 23:00 2h"], "UTC");
        // 2024-01-07 is a Sunday.
        assert_eq!(
            s.gate(ts("2024-01-07T23:30:00Z")),
            Gate::Open {
                closes: ts("2024-01-08T01:00:00Z")
            }
        );
        assert!(matches!(s.gate(ts("2024-01-08T00:30:00Z")), Gate::Open { .. }));
        assert_eq!(
            s.gate(ts("2024-01-08T01:00:00Z")),
            Gate::Closed {
                opens: Some(ts("2024-01-14T23:00:00Z"))
            }
        );
        // Exactly at the opening instant counts as inside.
        assert!(matches!(s.gate(ts("2024-01-07T23:00:00Z")), Gate::Open { .. }));
    }

    /// Daily `22:00 4h` in New York: at 01:00 local Tuesday we are inside Monday's window.
    #[test]
    fn daily_window_in_a_time_zone() {
        let s = sched(&["22:00 4h"], "America/New_York");
        // 2024-01-09 01:00 EST = 06:00 UTC.
        assert_eq!(
            s.gate(ts("2024-01-09T06:00:00Z")),
            Gate::Open {
                closes: ts("2024-01-09T07:00:00Z")
            }
        );
        // 12:00 EST: next opening 22:00 EST = 03:00 UTC next day.
        assert_eq!(
            s.gate(ts("2024-01-09T17:00:00Z")),
            Gate::Closed {
                opens: Some(ts("2024-01-10T03:00:00Z"))
            }
        );
    }

    /// Spring forward in Berlin, 2024-03-31: 02:00 CET jumps to 03:00 CEST. A `Sun 02:30 1h`
    /// window opens at 03:30 CEST (01:30 UTC) and closes one real hour later.
    #[test]
    fn spring_forward_gap() {
        let s = sched(&["Sun 02:30 1h"], "Europe/Berlin");
        assert_eq!(
            s.next_start_after(ts("2024-03-30T12:00:00Z")),
            Some(ts("2024-03-31T01:30:00Z"))
        );
        assert_eq!(
            s.gate(ts("2024-03-31T01:45:00Z")),
            Gate::Open {
                closes: ts("2024-03-31T02:30:00Z")
            }
        );
        // 01:15 UTC is 03:15 CEST: the window has not opened yet.
        assert!(matches!(s.gate(ts("2024-03-31T01:15:00Z")), Gate::Closed { .. }));
    }

    /// Fall back in Berlin, 2024-10-27: 02:30 happens twice (00:30 UTC in CEST, 01:30 UTC in
    /// CET). The window opens at the first one; a 1h window closes at the second.
    #[test]
    fn fall_back_fold() {
        let s = sched(&["Sun 02:30 1h"], "Europe/Berlin");
        assert_eq!(
            s.next_start_after(ts("2024-10-26T12:00:00Z")),
            Some(ts("2024-10-27T00:30:00Z"))
        );
        assert!(matches!(s.gate(ts("2024-10-27T01:00:00Z")), Gate::Open { .. }));
        assert!(matches!(s.gate(ts("2024-10-27T01:30:00Z")), Gate::Closed { .. }));
    }

    /// Two overlapping windows: the gate reports the later close; the earlier window's next
    /// opening wins when outside.
    #[test]
    fn several_windows() {
        let s = sched(&["Sat 01:00 3h", "Sat 02:00 4h", "Wed 12:00 30m"], "UTC");
        // 2024-01-13 is a Saturday.
        assert_eq!(
            s.gate(ts("2024-01-13T02:30:00Z")),
            Gate::Open {
                closes: ts("2024-01-13T06:00:00Z")
            }
        );
        assert_eq!(
            s.gate(ts("2024-01-13T07:00:00Z")),
            Gate::Closed {
                opens: Some(ts("2024-01-17T12:00:00Z"))
            }
        );
        assert_eq!(Schedule::always().gate(ts("2024-01-13T07:00:00Z")), Gate::Always);
    }

    /// A full-week window is always open, including right before its own next start.
    #[test]
    fn week_long_window() {
        let s = sched(&["Mon 00:00 168h"], "UTC");
        assert!(matches!(s.gate(ts("2024-01-14T23:59:59Z")), Gate::Open { .. }));
        assert!(matches!(s.gate(ts("2024-01-15T00:00:00Z")), Gate::Open { .. }));
    }
}
