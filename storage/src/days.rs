//! Business days: the store's and the providers' day, in China Standard Time (UTC+8), by which bills, totals and the archive go.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{IdError, UnixMillis};

const DAY_MILLIS: i64 = 86_400_000;
/// The providers' clock (their bills' days) and the store's: UTC+8.
const UTC_OFFSET_MILLIS: i64 = 8 * 3_600_000;

/// A business day: days since 1970-01-01 in UTC+8. Ordered; its bytes (big-endian, offset so that they
/// sort) key the ledger's per-day records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BusinessDay(pub i32);

impl BusinessDay {
    /// The day `at` falls on.
    pub fn of(at: UnixMillis) -> BusinessDay {
        let days = (at.0.saturating_add(UTC_OFFSET_MILLIS)).div_euclid(DAY_MILLIS);
        BusinessDay(i32::try_from(days).unwrap_or(if days < 0 { i32::MIN } else { i32::MAX }))
    }

    /// Its first millisecond.
    pub fn start(self) -> UnixMillis {
        UnixMillis(i64::from(self.0) * DAY_MILLIS - UTC_OFFSET_MILLIS)
    }

    /// The first millisecond of the next day.
    pub fn end(self) -> UnixMillis {
        self.next().start()
    }

    pub fn next(self) -> BusinessDay {
        BusinessDay(self.0.saturating_add(1))
    }

    /// `2026-11-25`, checked (a real date, years 1970 to 9999).
    pub fn parse(text: &str) -> Result<BusinessDay, IdError> {
        let bad = || IdError { what: "date", value: text.chars().take(40).collect(), rule: "a date as YYYY-MM-DD" };
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return Err(bad());
        }
        let number = |range: std::ops::Range<usize>| -> Result<i64, IdError> {
            let part = &text[range];
            if !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse().map_err(|_| bad())
        };
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        if year < 1970 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(bad());
        }
        Ok(BusinessDay(days_from_civil(year, month, day) as i32))
    }

    /// (year, month, day).
    pub fn civil(self) -> (i64, u32, u32) {
        civil_from_days(i64::from(self.0))
    }

    /// `2026-11`: the month it belongs to (the archive's unit).
    pub fn month(self) -> String {
        let (year, month, _) = self.civil();
        format!("{year:04}-{month:02}")
    }

    /// The key bytes: they sort as the days do.
    pub fn key(self) -> [u8; 4] {
        ((self.0 as u32) ^ 0x8000_0000).to_be_bytes()
    }
}

impl fmt::Display for BusinessDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = self.civil();
        write!(f, "{year:04}-{month:02}-{day:02}")
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's days_from_civil.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's civil_from_days.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_runs_from_midnight_to_midnight_in_china() {
        // 2025-11-25 00:00:00 UTC+8 is 2025-11-24 16:00:00 UTC.
        let day = BusinessDay::parse("2025-11-25").unwrap();
        assert_eq!(day.start(), UnixMillis(1_764_000_000_000));
        assert_eq!(BusinessDay::of(UnixMillis(1_764_000_000_000 - 1)).to_string(), "2025-11-24");
        assert_eq!(BusinessDay::of(day.end()), day.next());
        assert_eq!(day.month(), "2025-11");
        for text in ["2024-02-29", "1999-12-31", "2000-03-01", "2026-01-01"] {
            assert_eq!(BusinessDay::parse(text).unwrap().to_string(), text);
        }
        for bad in ["2026-02-29", "2026-13-01", "2026-1-01", "20261125", "2026-11-25 ", "1969-12-31", "２026-11-25"] {
            assert!(BusinessDay::parse(bad).is_err(), "{bad}");
        }
        assert!(BusinessDay(-5).key() < BusinessDay(3).key());
    }
}
