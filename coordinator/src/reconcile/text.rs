//! The bills' text, shared by both formats: bounded line reading, CSV fields, exact yuan amounts and China Standard Time.

use std::io::{BufRead, Read};

use checkout_storage::UnixMillis;

use super::{BillError, BillLimits};

/// Reads lines of a bill one at a time, within the limits: a line too long, too many lines or too much text
/// is refused with the line it happened on; a read error (a truncated gzip or zip entry) too.
pub(crate) struct LineReader<R> {
    reader: R,
    buf: Vec<u8>,
    /// The 1-based number of the line last returned.
    pub(crate) line: usize,
    read: u64,
    limits: BillLimits,
}

impl<R: BufRead> LineReader<R> {
    pub(crate) fn new(reader: R, limits: BillLimits) -> LineReader<R> {
        LineReader { reader, buf: Vec::with_capacity(512), line: 0, read: 0, limits }
    }

    /// Bytes of text read so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The next line without its `\n` or `\r\n`; `None` at the end.
    pub(crate) fn next_line(&mut self) -> Result<Option<&[u8]>, BillError> {
        self.buf.clear();
        let line = self.line + 1;
        let most = self.limits.max_line_bytes as u64 + 2;
        let n = (&mut self.reader)
            .take(most)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| BillError::at(line, format!("cannot be read: {e}")))?;
        if n == 0 {
            return Ok(None);
        }
        self.line = line;
        if line > self.limits.max_lines {
            return Err(BillError::at(line, format!("more than {} lines", self.limits.max_lines)));
        }
        self.read += n as u64;
        if self.read > self.limits.max_text_bytes {
            return Err(BillError::at(line, format!("more than {} bytes of text", self.limits.max_text_bytes)));
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        } else if n as u64 == most {
            return Err(BillError::at(line, format!("longer than {} bytes", self.limits.max_line_bytes)));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        if self.buf.len() > self.limits.max_line_bytes {
            return Err(BillError::at(line, format!("longer than {} bytes", self.limits.max_line_bytes)));
        }
        if line == 1 && self.buf.starts_with("\u{feff}".as_bytes()) {
            self.buf.drain(..3);
        }
        Ok(Some(&self.buf))
    }
}

/// The fields of one CSV line: split at commas outside double quotes; a quoted field's `""` is one quote.
/// `None` when a quote is left open.
pub(crate) fn split_fields(line: &str) -> Option<Vec<std::borrow::Cow<'_, str>>> {
    use std::borrow::Cow;
    if !line.contains('"') {
        return Some(line.split(',').map(Cow::Borrowed).collect());
    }
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (false, ',') => fields.push(Cow::Owned(std::mem::take(&mut field))),
            (_, c) => field.push(c),
        }
    }
    if quoted {
        return None;
    }
    fields.push(Cow::Owned(field));
    Some(fields)
}

/// Exact yuan with two decimals to fen: `"12.34"` → 1234, `"-0.06"` → -6. Anything else is `None`: one or three
/// decimals, no decimals, `+`, spaces, thousands separators, exponents, more than 15 digits before the point.
pub fn parse_yuan(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.')?;
    if whole.is_empty() || whole.len() > 15 || fraction.len() != 2 {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fen = whole.parse::<i64>().ok()?.checked_mul(100)?.checked_add(fraction.parse::<i64>().ok()?)?;
    Some(if negative { -fen } else { fen })
}

/// `2026-11-25 18:49:38` in China Standard Time (UTC+8, the providers' clock) to Unix milliseconds; `None` for
/// anything else.
pub fn parse_china_datetime(text: &str) -> Option<UnixMillis> {
    let b = text.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = &b[range];
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - 8 * 3600;
    Some(UnixMillis(seconds * 1000))
}

/// The date part of `2026-11-25 18:49:38` (or of `2026-11-25`), checked.
pub(crate) fn date_of(text: &str) -> Option<String> {
    let date = text.get(..10)?;
    parse_china_datetime(&format!("{date} 00:00:00"))?;
    Some(date.to_owned())
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::alipay::china_datetime;

    #[test]
    fn yuan_is_read_exactly_or_refused() {
        assert_eq!(parse_yuan("12.34"), Some(1234));
        assert_eq!(parse_yuan("0.01"), Some(1));
        assert_eq!(parse_yuan("-0.06"), Some(-6));
        assert_eq!(parse_yuan("100000000.00"), Some(10_000_000_000));
        for bad in ["12.3", "12", "12.345", "+1.00", " 1.00", "1.00 ", "1,000.00", "1e3", "", ".50", "1.-5", "--1.00"] {
            assert_eq!(parse_yuan(bad), None, "{bad:?}");
        }
        assert_eq!(parse_yuan("9999999999999999.00"), None);
    }

    #[test]
    fn china_times_read_back_what_the_providers_write() {
        for millis in [0i64, 1_764_067_778_000, 951_782_400_000, 4_102_444_799_000] {
            let at = UnixMillis(millis);
            assert_eq!(parse_china_datetime(&china_datetime(at)), Some(at));
        }
        for bad in ["2026-02-29 00:00:00", "2026-13-01 00:00:00", "2026-11-25T18:49:38", "2026-11-25 24:00:00"] {
            assert_eq!(parse_china_datetime(bad), None, "{bad}");
        }
        assert_eq!(date_of("2026-11-25 18:49:38").as_deref(), Some("2026-11-25"));
    }

    #[test]
    fn fields_split_at_commas_outside_quotes() {
        let fields = split_fields(r#"a,"b,c","d""e",f"#).unwrap();
        assert_eq!(fields, ["a", "b,c", "d\"e", "f"]);
        assert!(split_fields(r#"a,"b"#).is_none());
        assert_eq!(split_fields("`1,`2").unwrap(), ["`1", "`2"]);
    }

    #[test]
    fn lines_are_bounded() {
        let limits = BillLimits { max_line_bytes: 8, max_lines: 3, ..BillLimits::default() };
        let mut reader = LineReader::new(&b"ab\r\ncd\n"[..], limits);
        assert_eq!(reader.next_line().unwrap(), Some(&b"ab"[..]));
        assert_eq!(reader.next_line().unwrap(), Some(&b"cd"[..]));
        assert_eq!(reader.next_line().unwrap(), None);
        let mut reader = LineReader::new(&b"ok\n0123456789\n"[..], limits);
        reader.next_line().unwrap();
        assert_eq!(reader.next_line().unwrap_err().line, 2);
        let mut reader = LineReader::new(&b"1\n2\n3\n4\n"[..], limits);
        for _ in 0..3 {
            reader.next_line().unwrap();
        }
        assert!(reader.next_line().unwrap_err().reason.contains("more than 3 lines"));
    }
}
