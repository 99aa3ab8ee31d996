//! Text forms of `cic` rows as the dataset has them: Java `Double.toString`
//! numbers and `YYYY-MM-DD HH:MM:SS.ffffff` UTC timestamps.

use std::net::IpAddr;

use super::flow::CicMode;
use super::values::CicValue;

/// The shortest round-trip decimal digits of a finite, non-zero `|x|`: `x = ±0.D × 10^exponent`.
///
/// ryu finds the digits (several times faster than `core::fmt`, which dominated
/// extraction; like JDK 19+ it breaks ties to the even digit). Its own text is
/// already the layout wanted for 1e-5 <= |x| < 1e16; outside that range this
/// re-reads it into digits and exponent for Java's scientific or the plain layout.
struct Digits {
    buf: [u8; 24],
    len: usize,
    exponent: i32,
}

impl Digits {
    /// `abs` must be finite and positive.
    fn of(abs: impl ryu::Float) -> Digits {
        let mut ryu_buf = ryu::Buffer::new();
        let text = ryu_buf.format_finite(abs).as_bytes();
        let (mantissa, exp) = match text.iter().position(|&b| b == b'e') {
            Some(at) => (&text[..at], parse_exponent(&text[at + 1..])),
            None => (text, 0),
        };
        let mut digits = Digits {
            buf: [0; 24],
            len: 0,
            exponent: exp,
        };
        let mut point = None;
        for (at, &b) in mantissa.iter().enumerate() {
            if b == b'.' {
                point = Some(at);
            } else if b == b'0' && digits.len == 0 {
                // A leading zero moves the point left.
                digits.exponent -= 1;
            } else {
                digits.buf[digits.len] = b;
                digits.len += 1;
            }
        }
        // 0.D x 10^(digits before the point), less the leading zeros taken off above.
        digits.exponent += point.unwrap_or(mantissa.len()) as i32;
        while digits.len > 1 && digits.buf[digits.len - 1] == b'0' {
            digits.len -= 1;
        }
        digits
    }

    fn digits(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Plain decimal: `123.45`, `0.00012`, `1200`.
    fn write_plain(&self, out: &mut Vec<u8>) {
        let d = self.digits();
        let e = self.exponent;
        if e <= 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', e.unsigned_abs() as usize));
            out.extend_from_slice(d);
        } else if e as usize >= d.len() {
            out.extend_from_slice(d);
            out.extend(std::iter::repeat_n(b'0', e as usize - d.len()));
        } else {
            let (int, frac) = d.split_at(e as usize);
            out.extend_from_slice(int);
            out.push(b'.');
            out.extend_from_slice(frac);
        }
    }

    /// Java's computerised scientific form: `1.2345E7`, `1.0E-4`.
    fn write_scientific(&self, out: &mut Vec<u8>) {
        let d = self.digits();
        out.push(d[0]);
        out.push(b'.');
        if d.len() > 1 {
            out.extend_from_slice(&d[1..]);
        } else {
            out.push(b'0');
        }
        out.push(b'E');
        write_int(out, i64::from(self.exponent - 1));
    }
}

fn parse_exponent(text: &[u8]) -> i32 {
    let (sign, digits) = match text.first() {
        Some(b'-') => (-1, &text[1..]),
        _ => (1, text),
    };
    sign * digits
        .iter()
        .fold(0i32, |acc, &b| acc * 10 + i32::from(b - b'0'))
}

/// Appends an integer (itoa: `core::fmt` costs several times more per number).
pub fn write_int(out: &mut Vec<u8>, x: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(x).as_bytes());
}

/// [`write_int`] for a count: single digits (most of a short flow's columns) skip
/// itoa and its variable-length copy.
fn write_count(out: &mut Vec<u8>, x: i64) {
    if (0..10).contains(&x) {
        out.push(b'0' + x as u8);
    } else {
        write_int(out, x);
    }
}

/// Appends an address as `Display` prints it; IPv4 (nearly every flow) without `core::fmt`.
pub fn write_ip(out: &mut Vec<u8>, addr: IpAddr) {
    match addr {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write as _;
            let _ = write!(out, "{v6}");
        }
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
    if x.is_sign_negative() {
        out.push(b'-');
    }
    let abs = x.abs();
    if abs == 0.0 {
        out.extend_from_slice(b"0.0");
    } else if (1e-3..1e7).contains(&abs) {
        write_plain_fast(out, abs);
        if is_integer(abs) {
            out.extend_from_slice(b".0");
        }
    } else {
        Digits::of(abs).write_scientific(out);
    }
}

/// Whether `abs` (< 1e16) is whole; a cast round trip, as `f64::fract` calls libm's `trunc`.
fn is_integer(abs: f64) -> bool {
    (abs as u64) as f64 == abs
}

/// The plain form of `abs` in [1e-5, 1e16) (no `.0` on integers): integers through
/// itoa, others as ryu writes them, which in this range is already plain decimal.
fn write_plain_fast(out: &mut Vec<u8>, abs: f64) {
    if is_integer(abs) {
        write_count(out, abs as i64);
    } else {
        out.extend_from_slice(ryu::Buffer::new().format_finite(abs).as_bytes());
    }
}

/// Appends a finite `x` as Rust's `{}` prints it: the shortest round-trip digits,
/// never an exponent, no `.0` on integers.
pub(crate) fn write_plain_double(out: &mut Vec<u8>, x: f64) {
    if x.is_sign_negative() {
        out.push(b'-');
    }
    let abs = x.abs();
    if abs == 0.0 {
        out.push(b'0');
    } else if (1e-5..1e16).contains(&abs) {
        write_plain_fast(out, abs);
    } else {
        Digits::of(abs).write_plain(out);
    }
}

/// As [`write_plain_double`] for an `f32` (its own shortest digits, not its widening's).
pub(crate) fn write_plain_single(out: &mut Vec<u8>, x: f32) {
    if x.is_sign_negative() {
        out.push(b'-');
    }
    if x == 0.0 {
        out.push(b'0');
    } else {
        Digits::of(x.abs()).write_plain(out);
    }
}

/// Appends a feature value: integers as integers; reals as Java prints them in
/// compat mode, as the shortest round-trip decimal in fixed mode (never NaN/inf
/// there: the fixed features have none).
pub fn write_value(out: &mut Vec<u8>, value: CicValue, mode: CicMode) {
    match value {
        CicValue::Int(x) => write_count(out, x),
        CicValue::Real(x) => match mode {
            CicMode::Compat => write_java_double(out, x),
            CicMode::Fixed => write_plain_double(out, if x.is_finite() { x } else { 0.0 }),
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
    push_padded(out, year, 4);
    out.push(b'-');
    push_padded(out, i64::from(month), 2);
    out.push(b'-');
    push_padded(out, i64::from(day), 2);
    out.push(b' ');
    push_padded(out, hour, 2);
    out.push(b':');
    push_padded(out, minute, 2);
    let fraction = |out: &mut Vec<u8>, value: i64, width: usize| {
        out.push(b'.');
        push_padded(out, value, width);
    };
    match mode {
        CicMode::Fixed => {
            out.push(b':');
            push_padded(out, second, 2);
            fraction(out, frac_us, 6);
        }
        CicMode::Compat => {
            if second > 0 || frac_us > 0 {
                out.push(b':');
                push_padded(out, second, 2);
            }
            if frac_us > 0 {
                if frac_us % 1000 == 0 {
                    fraction(out, frac_us / 1000, 3);
                } else {
                    fraction(out, frac_us, 6);
                }
            }
        }
    }
}

/// Appends `x` zero-padded to `width` digits (as `{x:0width$}`, without `core::fmt`).
fn push_padded(out: &mut Vec<u8>, x: i64, width: usize) {
    let mut buf = itoa::Buffer::new();
    let text = buf.format(x).as_bytes();
    let (sign, digits) = match text.split_first() {
        Some((b'-', rest)) => (&b"-"[..], rest),
        _ => (&b""[..], text),
    };
    out.extend_from_slice(sign);
    out.extend(std::iter::repeat_n(b'0', width.saturating_sub(text.len())));
    out.extend_from_slice(digits);
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

    /// The layouts from ryu's digits against `core::fmt`'s (the implementation they replace).
    #[test]
    fn number_layouts_match_core_fmt() {
        let java_by_fmt = |x: f64| {
            let abs = x.abs();
            if abs == 0.0 || (1e-3..1e7).contains(&abs) {
                let plain = format!("{x}");
                if plain.contains('.') {
                    plain
                } else {
                    plain + ".0"
                }
            } else {
                let sci = format!("{x:e}");
                let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
                let dot = if mantissa.contains('.') { "" } else { ".0" };
                format!("{mantissa}{dot}E{exponent}")
            }
        };
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for i in 0..200_000u32 {
            let bits = next();
            let x = match i % 4 {
                // Any finite double.
                0 => f64::from_bits(bits),
                // Magnitudes flow features take, 1e-9 .. 1e18.
                1 => (bits >> 11) as f64 / (1u64 << 53) as f64 * 10f64.powi((i % 28) as i32 - 9),
                // Integers, small and large.
                2 => (bits % 10_000_000_000) as f64,
                _ => -((bits % 100_000) as f64) / 8.0,
            };
            if !x.is_finite() {
                continue;
            }
            assert_same_number::<f64>(&java(x), &java_by_fmt(x));
            let mut plain = Vec::new();
            write_value(&mut plain, CicValue::Real(x), CicMode::Fixed);
            assert_same_number::<f64>(
                &String::from_utf8(plain).unwrap_or_default(),
                &format!("{x}"),
            );
            let single = x as f32;
            if single.is_finite() {
                let mut plain = Vec::new();
                write_plain_single(&mut plain, single);
                let text = String::from_utf8(plain).unwrap_or_default();
                assert_same_number::<f32>(&text, &format!("{single}"));
            }
        }
        for x in [
            0.0,
            -0.0,
            1e-3,
            1e7,
            9_999_999.999_999_998,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            assert_eq!(java(x), java_by_fmt(x), "{x:?}");
        }
        // Exactly between two 17-digit decimals: the even last digit, as JDK 19+'s
        // Double.toString picks (core::fmt rounds this tie up, to ...153E15).
        assert_eq!(java(1_218_576_290_709_615.25), "1.2185762907096152E15");
    }

    /// Equal text, or (a tie between two shortest decimals) the same length and value.
    fn assert_same_number<F: std::str::FromStr + PartialEq + std::fmt::Debug>(
        ours: &str,
        fmt: &str,
    ) {
        let same_value = ours.len() == fmt.len() && ours.parse::<F>().ok() == fmt.parse::<F>().ok();
        assert!(ours == fmt || same_value, "ours {ours}, core::fmt {fmt}");
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
