//! Text forms of `cic` rows as the dataset has them: Java `Double.toString`
//! numbers and `YYYY-MM-DD HH:MM:SS.ffffff` UTC timestamps.

use std::fmt::Write as _;
use std::io::Write as _;

use super::flow::CicMode;
use super::values::CicValue;

/// A fixed stack buffer for formatting one number without allocating.
struct StackBuf {
    buf: [u8; 48],
    len: usize,
}

impl StackBuf {
    fn new() -> Self {
        StackBuf {
            buf: [0; 48],
            len: 0,
        }
    }
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Appends `x` as Java's `Double.toString` prints it: `NaN`, `Infinity`, plain
/// decimals with at least one fraction digit for 1e-3 <= |x| < 1e7, otherwise
/// `d.dddE±n`. Digits are the shortest that round-trip (JDK 19+; older JDKs
/// occasionally print one more digit, which parses to the same double).
pub fn write_java_double(out: &mut Vec<u8>, x: f64) {
    if x.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if x.is_infinite() {
        out.extend_from_slice(if x > 0.0 { b"Infinity" } else { b"-Infinity" });
        return;
    }
    let abs = x.abs();
    let mut buf = StackBuf::new();
    if abs == 0.0 || (1e-3..1e7).contains(&abs) {
        // `{}` never uses an exponent for f64 and prints the shortest round-trip digits.
        let _ = write!(buf, "{x}");
        out.extend_from_slice(buf.as_bytes());
        if !buf.as_bytes().contains(&b'.') {
            out.extend_from_slice(b".0");
        }
    } else {
        let _ = write!(buf, "{x:e}");
        let bytes = buf.as_bytes();
        let e_at = bytes.iter().position(|&b| b == b'e').unwrap_or(bytes.len());
        let (mantissa, exponent) = bytes.split_at(e_at);
        out.extend_from_slice(mantissa);
        if !mantissa.contains(&b'.') {
            out.extend_from_slice(b".0");
        }
        out.push(b'E');
        out.extend_from_slice(exponent.get(1..).unwrap_or_default());
    }
}

/// Appends a feature value: integers as integers; reals as Java prints them in
/// compat mode, as the shortest round-trip decimal in fixed mode (never NaN/inf
/// there: the fixed features have none).
pub fn write_value(out: &mut Vec<u8>, value: CicValue, mode: CicMode) {
    match value {
        CicValue::Int(x) => {
            let _ = write!(out, "{x}");
        }
        CicValue::Real(x) => match mode {
            CicMode::Compat => write_java_double(out, x),
            CicMode::Fixed => {
                let x = if x.is_finite() { x } else { 0.0 };
                let _ = write!(out, "{x}");
            }
        },
    }
}

/// Days since 1970-01-01 to (year, month, day): the civil-from-days algorithm
/// (H. Hinnant); written here because ten lines beat a date-time dependency.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Appends the flow start time in UTC. Compat: as the dataset (Java
/// `LocalDateTime.toString` with a space): the fraction has 0, 3 or 6 digits and
/// seconds are left out when both seconds and fraction are zero. Fixed: always
/// `YYYY-MM-DD HH:MM:SS.ffffff`.
pub fn write_timestamp(out: &mut Vec<u8>, ts_ns: i64, mode: CicMode) {
    let micros = ts_ns.div_euclid(1000);
    let secs = micros.div_euclid(1_000_000);
    let frac_us = micros.rem_euclid(1_000_000);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (hour, minute, second) = (sod / 3600, sod % 3600 / 60, sod % 60);
    let _ = write!(out, "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}");
    match mode {
        CicMode::Fixed => {
            let _ = write!(out, ":{second:02}.{frac_us:06}");
        }
        CicMode::Compat => {
            if second > 0 || frac_us > 0 {
                let _ = write!(out, ":{second:02}");
            }
            if frac_us > 0 {
                if frac_us % 1000 == 0 {
                    let _ = write!(out, ".{:03}", frac_us / 1000);
                } else {
                    let _ = write!(out, ".{frac_us:06}");
                }
            }
        }
    }
}

/// Appends a CSV field, quoted when it holds a separator, quote or line break.
pub fn write_csv_field(out: &mut Vec<u8>, field: &str) {
    if field
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.push(b'"');
        for b in field.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(field.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn java(x: f64) -> String {
        let mut out = Vec::new();
        write_java_double(&mut out, x);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn java_double_forms_match_dataset_spellings() {
        // Every expected string is copied from the k8s-misuse / slowloris CSVs.
        assert_eq!(java(1.0553370786516855e7), "1.0553370786516855E7");
        assert_eq!(java(1.17265842e8), "1.17265842E8");
        // The slowloris CSV (an older JDK) prints this one as 1.5856149875136262E15; the
        // shortest form differs in the last digit but parses to the same double.
        let slowloris = java(1.5856149875136262e15);
        assert!(
            slowloris.starts_with("1.585614987513626") && slowloris.ends_with("E15"),
            "{slowloris}"
        );
        assert_eq!(slowloris.parse::<f64>().ok(), Some(1.5856149875136262e15));
        assert_eq!(java(104.0), "104.0");
        assert_eq!(java(0.0), "0.0");
        assert_eq!(java(0.40932589355096394), "0.40932589355096394");
        assert_eq!(java(5102694.0), "5102694.0");
        assert_eq!(java(1.5e7), "1.5E7");
        assert_eq!(java(1e7), "1.0E7");
        assert_eq!(java(0.0001), "1.0E-4");
        assert_eq!(java(f64::NAN), "NaN");
        assert_eq!(java(f64::INFINITY), "Infinity");
        assert_eq!(java(-2.5), "-2.5");
    }

    fn ts(ns: i64, mode: CicMode) -> String {
        let mut out = Vec::new();
        write_timestamp(&mut out, ns, mode);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn timestamps_follow_the_dataset() {
        // 2023-03-19 15:02:20.266440 UTC = 1679238140.266440 s.
        assert_eq!(
            ts(1_679_238_140_266_440_000, CicMode::Compat),
            "2023-03-19 15:02:20.266440"
        );
        assert_eq!(
            ts(1_679_238_140_479_000_000, CicMode::Compat),
            "2023-03-19 15:02:20.479"
        );
        assert_eq!(
            ts(1_679_238_140_000_000_000, CicMode::Compat),
            "2023-03-19 15:02:20"
        );
        assert_eq!(
            ts(1_679_238_120_000_000_000, CicMode::Compat),
            "2023-03-19 15:02"
        );
        assert_eq!(
            ts(1_679_238_140_479_000_000, CicMode::Fixed),
            "2023-03-19 15:02:20.479000"
        );
        assert_eq!(ts(0, CicMode::Fixed), "1970-01-01 00:00:00.000000");
        assert_eq!(
            ts(951_782_400_000_000_000, CicMode::Fixed),
            "2000-02-29 00:00:00.000000"
        );
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let mut out = Vec::new();
        write_csv_field(&mut out, "a,b\"c");
        assert_eq!(out, b"\"a,b\"\"c\"");
        out.clear();
        write_csv_field(&mut out, "benign");
        assert_eq!(out, b"benign");
    }
}
