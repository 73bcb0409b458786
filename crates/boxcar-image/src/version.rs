//! The Boxcar version scheme (Flatcar's): `MAJOR.MINOR.PATCH` where MAJOR is
//! the number of whole days from 2013-07-01 00:00 UTC to the day the major
//! is cut, MINOR the channel level (0 alpha, 1 beta, 2 stable, 3 LTS) and
//! PATCH an incremental release. Pure functions: the date arithmetic is the
//! part most likely to be off by one, so it is kept small and tested.

use serde::Deserialize;
use std::fmt;

/// Days from 1970-01-01 to the epoch of the scheme, 2013-07-01.
pub const EPOCH_DAYS: i64 = 15887;

/// A release channel; its level is the MINOR number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Alpha,
    Beta,
    Stable,
    Lts,
}

impl Channel {
    /// MINOR of versions on this channel.
    pub fn level(self) -> u32 {
        match self {
            Channel::Alpha => 0,
            Channel::Beta => 1,
            Channel::Stable => 2,
            Channel::Lts => 3,
        }
    }
    /// The name the update server and os-release use.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Alpha => "alpha",
            Channel::Beta => "beta",
            Channel::Stable => "stable",
            Channel::Lts => "lts",
        }
    }
}

/// A calendar date (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

impl Date {
    /// Parses `YYYY-MM-DD`, rejecting impossible dates (2023-02-29).
    pub fn parse(s: &str) -> Option<Date> {
        let mut it = s.split('-');
        let (y, m, d) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return None;
        }
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if !(digits(y) && digits(m) && digits(d)) {
            return None;
        }
        let date = Date {
            year: y.parse().ok()?,
            month: m.parse().ok()?,
            day: d.parse().ok()?,
        };
        (date.month >= 1 && date.month <= 12 && date.day >= 1 && date.day <= days_in_month(date.year, date.month))
            .then_some(date)
    }

    /// Days since 1970-01-01 (negative before).
    pub fn days_since_unix_epoch(self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let y = if self.month <= 2 { self.year - 1 } else { self.year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = self.month as i64;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + self.day as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146097 + doe - 719468
    }

    /// Seconds since the Unix epoch at 00:00 UTC of this date.
    pub fn unix_seconds(self) -> i64 {
        self.days_since_unix_epoch() * 86400
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A Boxcar version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// MAJOR for a major cut on `date`; `None` before the scheme's epoch.
pub fn major_for(date: Date) -> Option<u32> {
    u32::try_from(date.days_since_unix_epoch() - EPOCH_DAYS).ok()
}

/// The version of a release cut on `date` for `channel` with `patch`.
pub fn version_for(date: Date, channel: Channel, patch: u32) -> Option<Version> {
    Some(Version {
        major: major_for(date)?,
        minor: channel.level(),
        patch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    #[test]
    fn epoch_constant_matches_the_calendar() {
        // 2013-07-01 00:00 UTC = 1372636800 s = 15887 days.
        assert_eq!(d("2013-07-01").unix_seconds(), 1_372_636_800);
        assert_eq!(d("2013-07-01").days_since_unix_epoch(), EPOCH_DAYS);
        assert_eq!(d("1970-01-01").days_since_unix_epoch(), 0);
        assert_eq!(d("2000-03-01").days_since_unix_epoch(), 11017);
    }

    #[test]
    fn worked_examples() {
        // Day zero and the day after.
        assert_eq!(major_for(d("2013-07-01")), Some(0));
        assert_eq!(major_for(d("2013-07-02")), Some(1));
        // 2013-07-01 .. 2014-07-01 spans no Feb 29: 365 days.
        assert_eq!(major_for(d("2014-07-01")), Some(365));
        // 2016 is a leap year: 2016-07-01 is 365*3 + 1 days later.
        assert_eq!(major_for(d("2016-07-01")), Some(1096));
        // A major cut on 2021-10-20 is 3033 (Flatcar's 3033.x line).
        assert_eq!(major_for(d("2021-10-20")), Some(3033));
        // Stable channel, patch 4.
        let v = version_for(d("2021-10-20"), Channel::Stable, 4).unwrap();
        assert_eq!(v.to_string(), "3033.2.4");
        assert_eq!(
            version_for(d("2026-11-22"), Channel::Alpha, 0).unwrap().to_string(),
            "4892.0.0"
        );
        assert_eq!(version_for(d("2026-11-22"), Channel::Lts, 1).unwrap().minor, 3);
        assert_eq!(major_for(d("2013-06-30")), None);
    }

    #[test]
    fn dates_are_checked() {
        assert!(Date::parse("2024-02-29").is_some());
        assert!(Date::parse("2023-02-29").is_none());
        assert!(Date::parse("1900-02-29").is_none());
        assert!(Date::parse("2000-02-29").is_some());
        assert!(Date::parse("2024-13-01").is_none());
        assert!(Date::parse("2024-04-31").is_none());
        assert!(Date::parse("2024-4-01").is_none());
        assert!(Date::parse("2024-04-01T").is_none());
        assert!(Date::parse("+024-04-01").is_none());
    }
}
