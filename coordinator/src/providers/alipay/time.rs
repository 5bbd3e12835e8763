//! Alipay's amounts (yuan with two decimals) and times (China Standard Time, UTC+8).

use checkout_storage::{BusinessDay, UnixMillis};

/// `1234` fen → `"12.34"`; integer arithmetic only.
pub fn fen_to_yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// `"12.34"`, `"12.3"`, `"12"` → fen; `None` for anything else (more than two decimals, signs, spaces).
pub fn yuan_to_fen(yuan: &str) -> Option<i64> {
    let (whole, fraction) = yuan.split_once('.').unwrap_or((yuan, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || whole.len() > 15 {
        return None;
    }
    if fraction.len() > 2 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let cents: i64 = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<i64>().ok()? * 10,
        _ => fraction.parse().ok()?,
    };
    whole.checked_mul(100)?.checked_add(cents)
}

/// A moment in China Standard Time, field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChinaTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// `(yyyy, mm, dd, HH, MM, SS)` of `at` in China Standard Time (UTC+8), the providers' clock.
pub fn china_time(at: UnixMillis) -> ChinaTime {
    let (year, month, day) = BusinessDay::of(at).civil();
    let rest = (at.0.div_euclid(1000) + 8 * 3600).rem_euclid(86_400);
    let (hour, minute, second) = ((rest / 3600) as u32, (rest % 3600 / 60) as u32, (rest % 60) as u32);
    ChinaTime { year, month, day, hour, minute, second }
}

/// `2026-11-25 18:49:38` in China Standard Time (Alipay's `timestamp`, bills' times).
pub fn china_datetime(at: UnixMillis) -> String {
    let t = china_time(at);
    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", t.year, t.month, t.day, t.hour, t.minute, t.second)
}

/// `2026-11-25`: the bill day of `at` in China Standard Time.
pub fn china_date(at: UnixMillis) -> String {
    BusinessDay::of(at).to_string()
}
