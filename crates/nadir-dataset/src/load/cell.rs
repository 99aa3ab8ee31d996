//! Parsing one cell: numbers (with NaN / Infinity / empty / junk counted) and timestamps.

use serde::{Deserialize, Serialize};

/// What was found in one column's cells.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CellCounts {
    /// `NaN` literals.
    pub nan: u64,
    /// `Infinity` / `inf`.
    pub pos_inf: u64,
    /// `-Infinity` / `-inf`.
    pub neg_inf: u64,
    /// Empty cells (or Parquet nulls).
    pub empty: u64,
    /// Non-numeric text (`abc`), kept as NaN.
    pub junk: u64,
    /// Finite numbers beyond the `f32` range, kept as ±infinity.
    pub overflow: u64,
    /// The first junk cell seen: (line, text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_junk: Option<(u64, String)>,
}

impl CellCounts {
    pub fn merge(&mut self, other: &CellCounts) {
        self.nan += other.nan;
        self.pos_inf += other.pos_inf;
        self.neg_inf += other.neg_inf;
        self.empty += other.empty;
        self.junk += other.junk;
        self.overflow += other.overflow;
        match (&self.first_junk, &other.first_junk) {
            (None, Some(j)) => self.first_junk = Some(j.clone()),
            (Some((a, _)), Some((b, _))) if b < a => self.first_junk = other.first_junk.clone(),
            _ => {}
        }
    }

    /// Cells that are not a finite number.
    pub fn non_finite(&self) -> u64 {
        self.nan + self.pos_inf + self.neg_inf + self.empty + self.junk + self.overflow
    }
}

/// Parses a numeric cell; never fails: what is not a finite number is counted and returned as
/// NaN or ±infinity.
#[inline]
pub(crate) fn parse_number(field: &[u8], counts: &mut CellCounts, line: u64) -> f32 {
    let field = field.trim_ascii();
    if field.is_empty() {
        counts.empty += 1;
        return f32::NAN;
    }
    match lexical_core::parse::<f64>(field) {
        Ok(v) => classify(v, counts),
        Err(_) => parse_special(field, counts, line),
    }
}

#[inline]
pub(crate) fn classify(v: f64, counts: &mut CellCounts) -> f32 {
    if v.is_nan() {
        counts.nan += 1;
        return f32::NAN;
    }
    if v.is_infinite() {
        if v > 0.0 {
            counts.pos_inf += 1;
        } else {
            counts.neg_inf += 1;
        }
        return v as f32;
    }
    let narrowed = v as f32;
    if narrowed.is_infinite() {
        counts.overflow += 1;
    }
    narrowed
}

#[cold]
fn parse_special(field: &[u8], counts: &mut CellCounts, line: u64) -> f32 {
    let (negative, body) = match field.first() {
        Some(b'-') => (true, &field[1..]),
        Some(b'+') => (false, &field[1..]),
        _ => (false, field),
    };
    let is = |word: &str| body.eq_ignore_ascii_case(word.as_bytes());
    if is("nan") {
        counts.nan += 1;
        return f32::NAN;
    }
    if is("inf") || is("infinity") {
        if negative {
            counts.neg_inf += 1;
            return f32::NEG_INFINITY;
        }
        counts.pos_inf += 1;
        return f32::INFINITY;
    }
    // Dotted IPv4 addresses (identity columns, when explicitly included) as 32-bit numbers.
    if let Some(ip) = std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse::<std::net::Ipv4Addr>().ok())
    {
        return u32::from(ip) as f32;
    }
    counts.junk += 1;
    if counts.first_junk.is_none() {
        let text = String::from_utf8_lossy(&field[..field.len().min(64)]).into_owned();
        counts.first_junk = Some((line, text));
    }
    f32::NAN
}

/// Seconds since 1970-01-01 UTC for the timestamp spellings of flow CSVs:
/// `2023-03-19 15:02:20.266440` (Kubernetes / nadir), `14/02/2018 08:31:01` (CSE-CIC-IDS2018,
/// day first), `3/7/2017 8:55` (CIC-IDS2017), with an optional ` AM`/` PM`, or a plain number of
/// seconds. The wall-clock time is taken as UTC (CIC files print local time; only order matters
/// for splits and windows).
///
/// Hand-written: a fixed handful of formats, parsed per row without allocation.
pub(crate) fn parse_timestamp(field: &[u8]) -> Option<f64> {
    let field = field.trim_ascii();
    if field.is_empty() {
        return None;
    }
    if let Ok(v) = lexical_core::parse::<f64>(field) {
        return v.is_finite().then_some(v);
    }
    let mut nums = [0u64; 6];
    let mut frac = 0f64;
    let mut n = 0;
    let mut i = 0;
    let mut first_sep = 0u8;
    while i < field.len() && n < 6 {
        let start = i;
        let mut v: u64 = 0;
        while i < field.len() && field[i].is_ascii_digit() {
            v = v.checked_mul(10)?.checked_add(u64::from(field[i] - b'0'))?;
            i += 1;
        }
        if i == start {
            return None;
        }
        nums[n] = v;
        n += 1;
        if i >= field.len() {
            break;
        }
        let sep = field[i];
        if n == 1 {
            first_sep = sep;
        }
        if sep == b'.' && n == 6 {
            // Fractional seconds.
            i += 1;
            let start = i;
            let mut scale = 0.1;
            while i < field.len() && field[i].is_ascii_digit() {
                frac += f64::from(field[i] - b'0') * scale;
                scale /= 10.0;
                i += 1;
            }
            if i == start {
                return None;
            }
            break;
        }
        if !matches!(sep, b'-' | b'/' | b' ' | b'T' | b':') {
            return None;
        }
        i += 1;
    }
    if n < 5 {
        return None;
    }
    let rest = field[i..].trim_ascii();
    let (year, month, day) = match first_sep {
        b'-' => (nums[0], nums[1], nums[2]),
        b'/' => (nums[2], nums[1], nums[0]),
        _ => return None,
    };
    let mut hour = nums[3];
    if rest.eq_ignore_ascii_case(b"PM") && hour < 12 {
        hour += 12;
    } else if rest.eq_ignore_ascii_case(b"AM") && hour == 12 {
        hour = 0;
    } else if !rest.is_empty()
        && !rest.eq_ignore_ascii_case(b"AM")
        && !rest.eq_ignore_ascii_case(b"PM")
    {
        return None;
    }
    let (minute, second) = (nums[4], nums[5]);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // The calendar is jiff's: a day that does not exist (30/02) is not a timestamp.
    let date = jiff::civil::Date::new(
        i16::try_from(year).ok()?,
        month as i8, // 1..=12, checked above
        day as i8,   // 1..=31
    )
    .ok()?;
    let midnight = jiff::tz::Offset::UTC
        .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
        .ok()?;
    // Time of day added here: a leap second (`:60`) runs into the next minute.
    Some(midnight.as_second() as f64 + (hour * 3600 + minute * 60 + second) as f64 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_specials_are_counted() {
        let mut c = CellCounts::default();
        assert_eq!(
            parse_number(b"1.0553370786516855E7", &mut c, 2),
            1.0553370786516855E7_f64 as f32
        );
        assert!(parse_number(b"NaN", &mut c, 2).is_nan());
        assert_eq!(parse_number(b"Infinity", &mut c, 2), f32::INFINITY);
        assert_eq!(parse_number(b"-Infinity", &mut c, 2), f32::NEG_INFINITY);
        assert!(parse_number(b"", &mut c, 2).is_nan());
        assert!(parse_number(b"abc", &mut c, 7).is_nan());
        assert_eq!(parse_number(b"1e300", &mut c, 2), f32::INFINITY);
        assert_eq!(parse_number(b" 42 ", &mut c, 2), 42.0);
        assert_eq!(
            (c.nan, c.pos_inf, c.neg_inf, c.empty, c.junk, c.overflow),
            (1, 1, 1, 1, 1, 1)
        );
        assert_eq!(c.first_junk, Some((7, "abc".to_string())));
    }

    #[test]
    fn timestamps_of_each_dataset_parse_to_utc_seconds() {
        // 2023-03-19 15:02:20.266440 UTC = 1679238140.26644
        let k8s = parse_timestamp(b"2023-03-19 15:02:20.266440").unwrap();
        assert!((k8s - 1_679_238_140.266_44).abs() < 1e-6);
        // 30/03/2020 08:35:49 PM -> 2020-03-30 20:35:49 = 1585600549
        assert_eq!(
            parse_timestamp(b"30/03/2020 08:35:49 PM"),
            Some(1_585_600_549.0)
        );
        // 3/7/2017 8:55 -> 2017-07-03 08:55:00 = 1499072100
        assert_eq!(parse_timestamp(b"3/7/2017 8:55"), Some(1_499_072_100.0));
        assert_eq!(
            parse_timestamp(b"12/01/2020 12:00:00 AM"),
            Some(1_578_787_200.0)
        );
        assert_eq!(parse_timestamp(b"yesterday"), None);
        assert_eq!(parse_timestamp(b"2023-13-01 00:00:00"), None);
    }

    #[test]
    fn timestamps_across_leap_days_year_ends_and_the_epoch() {
        assert_eq!(parse_timestamp(b"1970-01-01 00:00:00"), Some(0.0));
        assert_eq!(parse_timestamp(b"31/12/1969 23:59:59"), Some(-1.0));
        assert_eq!(
            parse_timestamp(b"1900-03-01 00:00:00"),
            Some(-2_203_891_200.0)
        );
        // 2020-02-29 exists, 2023-02-29 and 1900-02-29 do not (were read as 1 March).
        assert_eq!(
            parse_timestamp(b"29/02/2020 12:00:00"),
            Some(1_582_977_600.0)
        );
        assert_eq!(parse_timestamp(b"2023-02-29 00:00:00"), None);
        assert_eq!(parse_timestamp(b"1900-02-29 00:00:00"), None);
        assert_eq!(parse_timestamp(b"2000-02-29 00:00:00"), Some(951_782_400.0));
        assert_eq!(
            parse_timestamp(b"2019-12-31 23:59:59"),
            Some(1_577_836_799.0)
        );
        assert_eq!(parse_timestamp(b"1/1/2020 0:00"), Some(1_577_836_800.0));
        // A leap second runs into the next minute.
        assert_eq!(
            parse_timestamp(b"2016-12-31 23:59:60"),
            Some(1_483_228_800.0)
        );
    }
}
