//! Text forms of `cic` rows as the dataset has them: Java `Double.toString`
//! numbers and `YYYY-MM-DD HH:MM:SS.ffffff` UTC timestamps.

use std::net::IpAddr;

use super::flow::CicMode;
use super::values::{CicValue, FeatureVisitor, CIC_FEATURE_COUNT};
use super::CicIdentity;

/// The shortest round-trip decimal digits of a finite, non-zero `|x|`: `x = ±0.D × 10^exponent`.
///
/// zmij finds the digits (several times faster than `core::fmt`, which dominated
/// extraction, and than ryu; like JDK 19+ it breaks ties to the even digit). Its
/// own text is already the layout wanted for 1e-5 <= |x| < 1e16; outside that
/// range this re-reads it into digits and exponent for Java's scientific or the
/// plain layout.
struct Digits {
    buf: [u8; 24],
    len: usize,
    exponent: i32,
}

impl Digits {
    /// `abs` must be finite and positive.
    fn of(abs: impl zmij::Float) -> Digits {
        let mut buf = zmij::Buffer::new();
        let text = buf.format_finite(abs).as_bytes();
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

    /// Plain decimal: `123.45`, `0.00012`, `1200` (up to [`PLAIN_ROOM`] bytes with a sign).
    fn write_plain(&self, c: &mut Cursor) {
        let d = self.digits();
        let e = self.exponent;
        if e <= 0 {
            c.bytes(b"0.");
            c.zeros(e.unsigned_abs() as usize);
            c.bytes(d);
        } else if e as usize >= d.len() {
            c.bytes(d);
            c.zeros(e as usize - d.len());
        } else {
            let (int, frac) = d.split_at(e as usize);
            c.bytes(int);
            c.byte(b'.');
            c.bytes(frac);
        }
    }
}

fn parse_exponent(text: &[u8]) -> i32 {
    let (sign, digits) = match text.first() {
        Some(b'-') => (-1, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, text),
    };
    sign * digits
        .iter()
        .fold(0i32, |acc, &b| acc * 10 + i32::from(b - b'0'))
}

/// Most bytes of a value but fixed mode's extremes: Java's `-1.2345678901234567E-308`.
const VALUE_ROOM: usize = 24;
/// Most bytes of a plain `f64`: a sign, `0.`, 323 zeros and 17 digits (5e-324's
/// neighbours; `f64::MAX` takes 309 digits).
const PLAIN_ROOM: usize = 1 + 2 + 323 + 17;
/// Most bytes of a plain `f32`: a sign, `0.`, 44 zeros and 9 digits.
const PLAIN_SINGLE_ROOM: usize = 1 + 2 + 44 + 9;
/// Most bytes of an address's text (`Ipv6Addr`'s longest `Display` form).
const IP_ROOM: usize = 45;
/// Most bytes of a port or protocol number.
const PORT_ROOM: usize = 5;
/// Most bytes of a timestamp (i64 nanoseconds span the years 1677-2262).
const TIMESTAMP_ROOM: usize = 26;
/// Most bytes of a `Flow ID`: two addresses, two ports, a protocol, four dashes.
const FLOW_ID_ROOM: usize = 2 * IP_ROOM + 3 * PORT_ROOM + 4;
/// Most bytes of a row's identity columns (`Flow ID` ... `Timestamp`) and their commas.
const IDENTITY_ROOM: usize =
    FLOW_ID_ROOM + 2 * (1 + IP_ROOM + 1 + PORT_ROOM) + 1 + PORT_ROOM + 1 + TIMESTAMP_ROOM;
/// Most bytes of a row's 79 feature fields and their commas (fixed mode's plain
/// forms are the longest).
const VALUES_ROOM: usize = CIC_FEATURE_COUNT * (1 + PLAIN_ROOM);

/// Appends up to `most` bytes written through a [`Cursor`] by `fill`. The room is
/// made first and cut back to what was written, so each byte is a plain store:
/// no capacity check and length write-back per push, and copies of a fixed size
/// inline instead of `memcpy` calls (together most of the time of writing rows).
#[inline]
fn put_in_place(out: &mut Vec<u8>, most: usize, fill: impl FnOnce(&mut Cursor)) {
    let start = out.len();
    out.resize(start + most, 0);
    let mut cursor = Cursor {
        room: &mut out[start..],
        len: 0,
    };
    fill(&mut cursor);
    let len = cursor.len;
    out.truncate(start + len);
}

/// A write position in room made by [`put_in_place`] or [`TextBlock`]; every writer
/// states the most bytes it writes, and the room is sized from those bounds.
struct Cursor<'a> {
    room: &'a mut [u8],
    len: usize,
}

impl Cursor<'_> {
    #[inline]
    fn byte(&mut self, b: u8) {
        self.room[self.len] = b;
        self.len += 1;
    }

    #[inline]
    fn bytes(&mut self, text: &[u8]) {
        self.room[self.len..self.len + text.len()].copy_from_slice(text);
        self.len += text.len();
    }

    fn zeros(&mut self, n: usize) {
        self.room[self.len..self.len + n].fill(b'0');
        self.len += n;
    }

    /// Up to 20 bytes.
    #[inline]
    fn uint(&mut self, mut x: u64) {
        let len = decimal_len(x);
        let mut at = self.len + len;
        while x >= 100 {
            at -= 2;
            put_pair(self.room, at, (x % 100) as i64);
            x /= 100;
        }
        if x >= 10 {
            put_pair(self.room, self.len, x as i64);
        } else {
            self.room[self.len] = b'0' + x as u8;
        }
        self.len += len;
    }

    /// Up to 20 bytes.
    #[inline]
    fn int(&mut self, x: i64) {
        if x < 0 {
            self.byte(b'-');
        }
        self.uint(x.unsigned_abs());
    }

    /// [`Self::int`] for a count: single digits (most of a short flow's columns) as one byte.
    #[inline]
    fn count(&mut self, x: i64) {
        if (0..10).contains(&x) {
            self.byte(b'0' + x as u8);
        } else {
            self.int(x);
        }
    }

    /// An address as `Display` prints it; up to [`IP_ROOM`] bytes.
    #[inline]
    fn ip(&mut self, addr: IpAddr) {
        match addr {
            IpAddr::V4(v4) => {
                for octet in v4.octets() {
                    let (text, n) = OCTET_TEXT[usize::from(octet)];
                    self.room[self.len..self.len + 4].copy_from_slice(&text);
                    self.len += usize::from(n);
                }
                self.len -= 1; // no dot after the last octet
            }
            IpAddr::V6(v6) => {
                use std::io::Write as _;
                let mut rest = &mut self.room[self.len..];
                let room = rest.len();
                let _ = write!(rest, "{v6}");
                self.len += room - rest.len();
            }
        }
    }

    /// `x` as Java's `Double.toString` prints it: `NaN`, `Infinity`, plain decimals
    /// with at least one fraction digit for 1e-3 <= |x| < 1e7, otherwise `d.dddE±n`.
    /// Digits are the shortest that round-trip (JDK 19+; older JDKs occasionally
    /// print one more digit, which parses to the same double). Up to 24 bytes.
    fn java_double(&mut self, x: f64) {
        if !x.is_finite() {
            return self.bytes(match x {
                x if x.is_nan() => b"NaN",
                x if x > 0.0 => b"Infinity",
                _ => b"-Infinity",
            });
        }
        if x.is_sign_negative() {
            self.byte(b'-');
        }
        let abs = x.abs();
        if abs == 0.0 {
            self.bytes(b"0.0");
        } else if (1e-3..1e7).contains(&abs) {
            if is_integer(abs) {
                self.count(abs as i64);
                self.bytes(b".0");
            } else {
                // zmij's own text in this range: plain decimal.
                self.bytes(zmij::Buffer::new().format_finite(abs).as_bytes());
            }
        } else {
            // Java's computerised scientific form: `1.2345E7`, `1.0E-4`.
            let digits = Digits::of(abs);
            let d = digits.digits();
            self.byte(d[0]);
            self.byte(b'.');
            if d.len() > 1 {
                self.bytes(&d[1..]);
            } else {
                self.byte(b'0');
            }
            self.byte(b'E');
            self.int(i64::from(digits.exponent - 1));
        }
    }

    /// A finite `x` as Rust's `{}` prints it: shortest round-trip digits, never an
    /// exponent, no `.0` on integers. Up to [`VALUE_ROOM`] bytes when
    /// [`plain_is_short`], else up to [`PLAIN_ROOM`].
    fn plain_double(&mut self, x: f64) {
        if x.is_sign_negative() {
            self.byte(b'-');
        }
        let abs = x.abs();
        if abs == 0.0 {
            self.byte(b'0');
        } else if !plain_is_short(abs) {
            Digits::of(abs).write_plain(self);
        } else if is_integer(abs) {
            self.count(abs as i64);
        } else {
            // zmij's own text in this range: plain decimal, and no `.0` as not whole.
            self.bytes(zmij::Buffer::new().format_finite(abs).as_bytes());
        }
    }

    /// A CSV field, quoted when it holds a separator, quote or line break; up to
    /// [`csv_field_room`] bytes.
    fn csv_field(&mut self, field: &str) {
        if field
            .bytes()
            .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
        {
            self.byte(b'"');
            for b in field.bytes() {
                if b == b'"' {
                    self.byte(b'"');
                }
                self.byte(b);
            }
            self.byte(b'"');
        } else {
            self.bytes(field.as_bytes());
        }
    }

    /// A `Flow ID` ([`FLOW_ID_ROOM`] bytes at most).
    fn flow_id(&mut self, id: &CicIdentity) {
        self.ip(id.first_src.addr);
        self.byte(b'-');
        self.ip(id.first_dst.addr);
        self.byte(b'-');
        self.uint(id.first_src.port.into());
        self.byte(b'-');
        self.uint(id.first_dst.port.into());
        self.byte(b'-');
        self.uint(id.protocol.into());
    }

    /// The identity columns (`Flow ID` ... `Timestamp`), comma-separated;
    /// [`IDENTITY_ROOM`] bytes at most.
    fn identity_fields(&mut self, id: &CicIdentity, mode: CicMode) {
        self.flow_id(id);
        for endpoint in [id.src, id.dst] {
            self.byte(b',');
            self.ip(endpoint.addr);
            self.byte(b',');
            self.uint(endpoint.port.into());
        }
        self.byte(b',');
        self.uint(id.protocol.into());
        self.byte(b',');
        self.timestamp(id.start_ts_ns, mode);
    }

    /// A feature value: integers as integers; reals as Java prints them in compat
    /// mode, as the shortest round-trip decimal in fixed mode (never NaN/inf there:
    /// the fixed features have none). [`VALUE_ROOM`] bytes at most, but for fixed
    /// mode's extremes (up to [`PLAIN_ROOM`]; see [`plain_is_short`]).
    #[inline]
    fn value(&mut self, value: CicValue, mode: CicMode) {
        match (value, mode) {
            (CicValue::Int(x), _) => self.count(x),
            (CicValue::Real(x), CicMode::Compat) => self.java_double(x),
            (CicValue::Real(x), CicMode::Fixed) => self.plain_double(finite_or_zero(x)),
        }
    }

    /// The flow start time in UTC ([`TIMESTAMP_ROOM`] bytes at most). Compat: as the dataset (Java `LocalDateTime.toString`
    /// with a space): the fraction has 0, 3 or 6 digits and seconds are left out
    /// when both seconds and fraction are zero. Fixed: always
    /// `YYYY-MM-DD HH:MM:SS.ffffff`.
    ///
    /// The calendar is jiff's; the digits are put in place here. Formatting 1M start times
    /// (bench/timestamp, release, 2-core VM): jiff's date + these digits 51-54 ms, the former
    /// hand-written civil-from-days 68 ms, jiff's `DateTimePrinter` 57-70 ms, `strftime` 209-225 ms.
    fn timestamp(&mut self, ts_ns: i64, mode: CicMode) {
        // Microseconds of an i64 of ns are always within jiff's range (years -9999..=9999).
        let micros = ts_ns.div_euclid(1000);
        let at_utc = jiff::Timestamp::from_microsecond(micros)
            .map(|ts| jiff::tz::Offset::UTC.to_datetime(ts))
            .unwrap_or_default();
        let frac_us = micros.rem_euclid(1_000_000);
        let (year, month, day) = (i64::from(at_utc.year()), at_utc.month(), at_utc.day());
        let (hour, minute, second) = (
            i64::from(at_utc.hour()),
            i64::from(at_utc.minute()),
            i64::from(at_utc.second()),
        );
        let start = self.len;
        self.bytes(b"YYYY-MM-DD HH:MM:SS.ffffff");
        let mut at = start;
        for x in [year / 100, year % 100] {
            put_pair(self.room, at, x);
            at += 2;
        }
        for x in [i64::from(month), i64::from(day), hour, minute, second] {
            put_pair(self.room, at + 1, x);
            at += 3;
        }
        at += 1; // the point
        for x in [frac_us / 10_000, frac_us / 100 % 100, frac_us % 100] {
            put_pair(self.room, at, x);
            at += 2;
        }
        self.len = start
            + match mode {
                CicMode::Fixed => TIMESTAMP_ROOM,
                // Java's LocalDateTime: no seconds when seconds and fraction are zero,
                // and the fraction in 3 digits when it is whole milliseconds.
                CicMode::Compat if frac_us > 0 && frac_us % 1000 == 0 => 23,
                CicMode::Compat if frac_us > 0 => TIMESTAMP_ROOM,
                CicMode::Compat if second > 0 => 19,
                CicMode::Compat => 16,
            };
    }
}

fn finite_or_zero(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

/// Whether `x`'s plain form fits [`VALUE_ROOM`] (|x| in [1e-5, 1e16), or zero).
fn plain_is_short(x: f64) -> bool {
    x == 0.0 || (1e-5..1e16).contains(&x.abs())
}

/// Number of decimal digits of `x`; ports and counts first, without `ilog10`.
#[inline]
fn decimal_len(x: u64) -> usize {
    match x {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        1000..=9999 => 4,
        10_000..=99_999 => 5,
        _ => x.ilog10() as usize + 1,
    }
}

/// "00" .. "99": numbers are written two digits at a time.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes `x` (clamped to 0..100) as two digits at `room[at..at + 2]`.
#[inline]
fn put_pair(room: &mut [u8], at: usize, x: i64) {
    let pair = 2 * x.clamp(0, 99) as usize;
    room[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
}

/// Each octet's digits and a dot, and their length: an IPv4 address is four
/// fixed-size copies.
const OCTET_TEXT: [([u8; 4], u8); 256] = {
    let mut table = [([0; 4], 0); 256];
    let mut octet = 0;
    while octet < 256 {
        let hundreds = b'0' + (octet / 100) as u8;
        let tens = b'0' + (octet / 10 % 10) as u8;
        let ones = b'0' + (octet % 10) as u8;
        table[octet] = if octet >= 100 {
            ([hundreds, tens, ones, b'.'], 4)
        } else if octet >= 10 {
            ([tens, ones, b'.', 0], 3)
        } else {
            ([ones, b'.', 0, 0], 2)
        };
        octet += 1;
    }
    table
};

/// Whether `abs` (< 1e16) is whole; a cast round trip, as `f64::fract` calls libm's `trunc`.
fn is_integer(abs: f64) -> bool {
    (abs as u64) as f64 == abs
}

/// Appends an unsigned integer (`core::fmt` costs several times more per number).
pub fn write_uint(out: &mut Vec<u8>, x: u64) {
    put_in_place(out, 20, |c| c.uint(x));
}

/// Appends a signed integer.
pub fn write_int(out: &mut Vec<u8>, x: i64) {
    put_in_place(out, 20, |c| c.int(x));
}

/// Appends an address as `Display` prints it; IPv4 (nearly every flow) without `core::fmt`.
pub fn write_ip(out: &mut Vec<u8>, addr: IpAddr) {
    put_in_place(out, IP_ROOM, |c| c.ip(addr));
}

/// Appends `x` as Java's `Double.toString` prints it (see [`Cursor::java_double`]).
pub fn write_java_double(out: &mut Vec<u8>, x: f64) {
    put_in_place(out, VALUE_ROOM, |c| c.java_double(x));
}

/// Appends a finite `x` as Rust's `{}` prints it: the shortest round-trip digits,
/// never an exponent, no `.0` on integers.
pub(crate) fn write_plain_double(out: &mut Vec<u8>, x: f64) {
    if plain_is_short(x) {
        put_in_place(out, VALUE_ROOM, |c| c.plain_double(x));
    } else {
        put_in_place(out, PLAIN_ROOM, |c| c.plain_double(x));
    }
}

/// As [`write_plain_double`] for an `f32` (its own shortest digits, not its widening's).
pub(crate) fn write_plain_single(out: &mut Vec<u8>, x: f32) {
    put_in_place(out, PLAIN_SINGLE_ROOM, |c| {
        if x.is_sign_negative() {
            c.byte(b'-');
        }
        if x == 0.0 {
            c.byte(b'0');
        } else {
            Digits::of(x.abs()).write_plain(c);
        }
    });
}

/// Appends a feature value: integers as integers; reals as Java prints them in
/// compat mode, as the shortest round-trip decimal in fixed mode (never NaN/inf
/// there: the fixed features have none).
pub fn write_value(out: &mut Vec<u8>, value: CicValue, mode: CicMode) {
    put_in_place(out, PLAIN_ROOM, |c| c.value(value, mode));
}

/// Appends the `Flow ID` (`srcIP-dstIP-srcPort-dstPort-proto` of the first packet).
pub(crate) fn write_flow_id(out: &mut Vec<u8>, id: &CicIdentity) {
    put_in_place(out, FLOW_ID_ROOM, |c| c.flow_id(id));
}

/// Most bytes [`Cursor::csv_field`] writes for `field`: every byte a quote, doubled, in quotes.
fn csv_field_room(field: &str) -> usize {
    2 * field.len() + 2
}

/// Text written in place, for rows: a zero-filled block whose bytes past the text
/// are the room the next row is written into through a [`Cursor`]. The block is
/// zeroed once, when it grows, so a row of any length (fixed mode's long plain
/// numbers included) costs neither a zeroing of its room (`Vec::resize`, as
/// [`put_in_place`] does for a single field) nor a capacity check per byte.
pub struct TextBlock {
    block: Vec<u8>,
    len: usize,
}

impl TextBlock {
    /// An empty block with `capacity` bytes of room to start with.
    pub fn with_capacity(capacity: usize) -> Self {
        TextBlock {
            block: vec![0; capacity],
            len: 0,
        }
    }

    /// The text written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.block[..self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets the text, keeping the room.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    #[inline]
    pub fn extend_from_slice(&mut self, text: &[u8]) {
        self.put(text.len(), |c| c.bytes(text));
    }

    /// Keeps the first `len` bytes of the text.
    #[inline]
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Appends a CSV field, quoted when it holds a separator, quote or line break.
    pub fn csv_field(&mut self, field: &str) {
        self.put(csv_field_room(field), |c| c.csv_field(field));
    }

    /// Writes up to `most` bytes through a cursor; the block grows first when its
    /// room is shorter.
    #[inline]
    fn put(&mut self, most: usize, fill: impl FnOnce(&mut Cursor)) {
        let end = self.len + most;
        if self.block.len() < end {
            self.block.resize(end, 0);
        }
        let mut cursor = Cursor {
            room: &mut self.block[self.len..end],
            len: 0,
        };
        fill(&mut cursor);
        self.len += cursor.len;
    }
}

/// Writes visited feature values as CSV fields, each with its leading comma; at
/// most [`VALUES_ROOM`] bytes for a row's 79.
pub(crate) struct CsvValues<'c, 'r> {
    cursor: &'c mut Cursor<'r>,
    mode: CicMode,
}

impl FeatureVisitor for CsvValues<'_, '_> {
    // Zeros and single digits, most fields of short flows, are one small store
    // inlined into the feature code; other values are written out of line.
    #[inline(always)]
    fn int(&mut self, x: i64) {
        if (0..10).contains(&x) {
            self.cursor.bytes(&[b',', b'0' + x as u8]);
        } else {
            self.long_int(x);
        }
    }

    #[inline(always)]
    fn real(&mut self, x: f64) {
        match self.mode {
            _ if x.to_bits() != 0 => self.nonzero_real(x),
            CicMode::Compat => self.cursor.bytes(b",0.0"),
            CicMode::Fixed => self.cursor.bytes(b",0"),
        }
    }
}

impl CsvValues<'_, '_> {
    #[inline(never)]
    fn long_int(&mut self, x: i64) {
        self.cursor.byte(b',');
        self.cursor.int(x);
    }

    #[inline(never)]
    fn nonzero_real(&mut self, x: f64) {
        self.cursor.byte(b',');
        self.cursor.value(CicValue::Real(x), self.mode);
    }
}

/// Appends one CSV row: the identity columns, the 79 values `values` hands to its
/// visitor, the label and a newline, all written in one room.
#[inline]
pub(crate) fn write_csv_row(
    out: &mut TextBlock,
    id: &CicIdentity,
    mode: CicMode,
    label: &str,
    values: impl FnOnce(&mut CsvValues),
) {
    let most = IDENTITY_ROOM + VALUES_ROOM + 1 + csv_field_room(label) + 1;
    out.put(most, |cursor| {
        cursor.identity_fields(id, mode);
        values(&mut CsvValues {
            cursor: &mut *cursor,
            mode,
        });
        cursor.byte(b',');
        cursor.csv_field(label);
        cursor.byte(b'\n');
    });
}

/// Appends the flow start time in UTC (see [`Cursor::timestamp`]).
pub fn write_timestamp(out: &mut Vec<u8>, ts_ns: i64, mode: CicMode) {
    put_in_place(out, TIMESTAMP_ROOM, |c| c.timestamp(ts_ns, mode));
}

/// Appends a CSV field, quoted when it holds a separator, quote or line break.
pub fn write_csv_field(out: &mut Vec<u8>, field: &str) {
    put_in_place(out, csv_field_room(field), |c| c.csv_field(field));
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

    /// The layouts from zmij's digits against `core::fmt`'s (the implementation they replace).
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
        // The literal is the exact double (its ulp here is 0.25).
        #[allow(clippy::excessive_precision)]
        let tie = 1_218_576_290_709_615.25;
        assert_eq!(java(tie), "1.2185762907096152E15");
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
    fn integers_and_addresses_print_as_core_fmt() {
        let text = |write: &dyn Fn(&mut Vec<u8>)| {
            let mut out = b"x".to_vec();
            write(&mut out);
            String::from_utf8(out).unwrap_or_default()
        };
        let mut x = 1u64;
        let mut values = vec![0, 9, 10, 99, 100, 65_535, u64::MAX];
        while let Some(next) = x.checked_mul(10) {
            values.extend([x - 1, x, x + 1]);
            x = next;
        }
        for v in values {
            assert_eq!(text(&|o| write_uint(o, v)), format!("x{v}"));
            let signed = v as i64;
            assert_eq!(text(&|o| write_int(o, signed)), format!("x{signed}"));
        }
        assert_eq!(text(&|o| write_int(o, i64::MIN)), format!("x{}", i64::MIN));
        for v4 in [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.2.15",
            "192.168.56.102",
            "1.20.100.9",
        ] {
            let addr: IpAddr = v4.parse().unwrap_or(IpAddr::from([0; 4]));
            assert_eq!(text(&|o| write_ip(o, addr)), format!("x{v4}"));
        }
        let v6: IpAddr = "2001:db8::ff00:42:8329"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(text(&|o| write_ip(o, v6)), format!("x{v6}"));
    }

    /// The row's value visitor (one room for all fields) against value-by-value
    /// writing, with fixed mode's long plain forms (1e20, 1e-9).
    #[test]
    fn value_fields_match_single_values() {
        let mut values = [CicValue::Int(0); CIC_FEATURE_COUNT];
        for (i, value) in values.iter_mut().enumerate() {
            *value = match i % 7 {
                0 => CicValue::Real(1e20 * i as f64),
                1 => CicValue::Real(-1e-9 / i as f64),
                2 => CicValue::Int(-(i as i64) * 1_000_003),
                3 => CicValue::Real(f64::NAN),
                4 => CicValue::Real(-0.0),
                5 => CicValue::Real(i as f64 / 3.0),
                _ => CicValue::Int(i as i64 % 10),
            };
        }
        let features = super::super::CicFeatures::new(values);
        for mode in [CicMode::Compat, CicMode::Fixed] {
            // A block too small for the row: it must grow, not cut it.
            let mut row = TextBlock::with_capacity(8);
            row.extend_from_slice(b"x");
            row.put(VALUES_ROOM, |cursor| {
                features.visit(&mut CsvValues { cursor, mode });
            });
            let mut expected = b"x".to_vec();
            for &value in &values {
                expected.push(b',');
                write_value(&mut expected, value, mode);
            }
            assert_eq!(
                String::from_utf8_lossy(row.as_bytes()),
                String::from_utf8_lossy(&expected)
            );
            assert!(row.len() > 2 * CIC_FEATURE_COUNT);
        }
        let mut long = Vec::new();
        write_value(&mut long, CicValue::Real(-1e20), CicMode::Fixed);
        assert_eq!(long, b"-100000000000000000000");
    }

    /// The longest plain numbers fit [`PLAIN_ROOM`] / [`PLAIN_SINGLE_ROOM`].
    #[test]
    fn longest_plain_numbers_fit_their_room() {
        let mut longest = 0;
        // The largest subnormal has 16 digits after 307 zeros.
        let subnormal = f64::from_bits(0x000F_FFFF_FFFF_FFFF);
        for x in [f64::MAX, f64::MIN_POSITIVE, 5e-324, subnormal] {
            let mut out = Vec::new();
            write_plain_double(&mut out, -x);
            assert!(out.len() <= PLAIN_ROOM, "{x:e}: {}", out.len());
            assert_eq!(String::from_utf8_lossy(&out).parse::<f64>().ok(), Some(-x));
            longest = longest.max(out.len());
        }
        assert!(longest > PLAIN_ROOM - 20, "{longest}");
        for x in [f32::MAX, f32::MIN_POSITIVE, 1e-45, 1.1754942e-38] {
            let mut out = Vec::new();
            write_plain_single(&mut out, -x);
            assert!(out.len() <= PLAIN_SINGLE_ROOM, "{x:e}: {}", out.len());
            assert_eq!(String::from_utf8_lossy(&out).parse::<f32>().ok(), Some(-x));
        }
    }

    /// The longest identity columns fit their room and print as `core::fmt` would.
    #[test]
    fn longest_identity_columns_fit_their_room() {
        use nadir_flow::Endpoint;
        let v6 = |text: &str| -> IpAddr { text.parse().unwrap_or(IpAddr::from([0; 16])) };
        let a = v6("::ffff:255.255.255.255");
        let b = v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
        let end = |addr| Endpoint { addr, port: 65535 };
        let id = CicIdentity {
            src: end(b),
            dst: end(a),
            first_src: end(a),
            first_dst: end(b),
            protocol: 255,
            start_ts_ns: i64::MAX,
        };
        for mode in [CicMode::Compat, CicMode::Fixed] {
            let mut out = TextBlock::with_capacity(0);
            out.put(IDENTITY_ROOM, |c| c.identity_fields(&id, mode));
            let text = String::from_utf8_lossy(out.as_bytes()).into_owned();
            assert!(text.len() <= IDENTITY_ROOM, "{}", text.len());
            let expected =
                format!("{a}-{b}-65535-65535-255,{b},65535,{a},65535,255,2262-04-11 23:47:16");
            assert!(text.starts_with(&expected), "{text}");
        }
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
