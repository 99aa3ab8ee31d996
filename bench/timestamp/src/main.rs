//! Formats 1M flow start times as the CIC `Timestamp` column (`YYYY-MM-DD HH:MM:SS.ffffff`)
//! four ways and checks they agree: the hand-written civil-from-days that
//! crates/nadir-features/src/cic/format.rs had before issue 20, jiff's calendar with the same
//! fixed-width digit writer (what format.rs does now), jiff's `DateTimePrinter`, and `strftime`.

use std::hint::black_box;
use std::time::Instant;
use jiff::fmt::temporal::DateTimePrinter;
use jiff::tz::Offset;
use jiff::Timestamp;

// The former crates/nadir-features/src/cic/format.rs civil_from_days + Cursor::timestamp (Fixed).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
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
#[inline]
fn put_pair(room: &mut [u8], at: usize, x: i64) {
    room[at] = b'0' + (x / 10) as u8;
    room[at + 1] = b'0' + (x % 10) as u8;
}
fn digits(out: &mut Vec<u8>, year: i64, month: i64, day: i64, hour: i64, minute: i64, second: i64, frac_us: i64) {
    let start = out.len();
    out.extend_from_slice(b"YYYY-MM-DD HH:MM:SS.ffffff");
    let room = &mut out[start..];
    let mut at = 0;
    for x in [year / 100, year % 100] { put_pair(room, at, x); at += 2; }
    for x in [month, day, hour, minute, second] { put_pair(room, at + 1, x); at += 3; }
    at += 1;
    for x in [frac_us / 10_000, frac_us / 100 % 100, frac_us % 100] { put_pair(room, at, x); at += 2; }
}
fn hand(out: &mut Vec<u8>, ts_ns: i64) {
    let micros = ts_ns.div_euclid(1000);
    let secs = micros.div_euclid(1_000_000);
    let frac_us = micros.rem_euclid(1_000_000);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    digits(out, year, month.into(), day.into(), sod / 3600, sod % 3600 / 60, sod % 60, frac_us);
}
fn jiff_fields(out: &mut Vec<u8>, ts_ns: i64) {
    let ts = Timestamp::from_microsecond(ts_ns.div_euclid(1000)).unwrap();
    let dt = Offset::UTC.to_datetime(ts);
    digits(out, dt.year().into(), dt.month().into(), dt.day().into(), dt.hour().into(), dt.minute().into(), dt.second().into(), (dt.subsec_nanosecond() / 1000).into());
}
const P: DateTimePrinter = DateTimePrinter::new().separator(b' ').precision(Some(6));
fn jiff_printer(out: &mut Vec<u8>, ts_ns: i64) {
    let ts = Timestamp::from_microsecond(ts_ns.div_euclid(1000)).unwrap();
    let dt = Offset::UTC.to_datetime(ts);
    P.print_datetime(&dt, &mut *out).unwrap();
}
fn jiff_strftime(out: &mut Vec<u8>, ts_ns: i64) {
    use std::io::Write;
    let ts = Timestamp::from_microsecond(ts_ns.div_euclid(1000)).unwrap();
    let dt = Offset::UTC.to_datetime(ts);
    write!(out, "{}", dt.strftime("%Y-%m-%d %H:%M:%S%.6f")).unwrap();
}
fn run(name: &str, f: fn(&mut Vec<u8>, i64), ts: &[i64]) -> Vec<u8> {
    let mut best = f64::MAX;
    let mut out = Vec::with_capacity(ts.len() * 27);
    for _ in 0..5 {
        out.clear();
        let t = Instant::now();
        for &x in ts { f(&mut out, black_box(x)); out.push(b'\n'); }
        black_box(&out);
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("{name:14} {:7.2} ms per 1M  ({:.1} ns/ts)", best * 1e3 * 1e6 / ts.len() as f64, best * 1e9 / ts.len() as f64);
    out
}
fn main() {
    // 1M flow start times over ~a week from 2023-03-19, microsecond spread (xorshift).
    let mut s = 0x9e3779b97f4a7c15u64;
    let ts: Vec<i64> = (0..1_000_000).map(|_| { s ^= s << 13; s ^= s >> 7; s ^= s << 17; 1_679_238_140_266_440_000 + (s % 604_800_000_000) as i64 * 1000 }).collect();
    let a = run("hand", hand, &ts);
    let b = run("jiff+digits", jiff_fields, &ts);
    let c = run("jiff printer", jiff_printer, &ts);
    let d = run("jiff strftime", jiff_strftime, &ts);
    assert!(a == b && a == c && a == d, "outputs differ");
    println!("outputs identical");
}
