//! Human-readable numbers: times, sizes, rates and counts.

use crate::model::{Summary, Unit};

/// A time in nanoseconds, in the unit that keeps 3 significant figures.
pub fn time(ns: f64) -> String {
    if !ns.is_finite() {
        return "n/a".into();
    }
    let (v, u) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    format!("{} {u}", sig3(v))
}

/// A size in bytes, in binary units.
pub fn bytes(b: f64) -> String {
    if !b.is_finite() {
        return "n/a".into();
    }
    let (v, u) = if b < 1024.0 {
        return format!("{} B", b.round() as i64);
    } else if b < 1024.0 * 1024.0 {
        (b / 1024.0, "KiB")
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        (b / 1024.0 / 1024.0, "MiB")
    } else {
        (b / 1024.0 / 1024.0 / 1024.0, "GiB")
    };
    format!("{} {u}", sig3(v))
}

/// A rate per second with thousands separators.
pub fn rate(r: f64) -> String {
    if !r.is_finite() {
        return "n/a".into();
    }
    format!("{}/s", count(r.round() as u64))
}

/// An integer with thousands separators.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio such as `12.3×`.
pub fn ratio(r: f64) -> String {
    if !r.is_finite() {
        return "n/a".into();
    }
    if r >= 100.0 {
        format!("{}×", count(r.round() as u64))
    } else {
        format!("{}×", sig3(r))
    }
}

/// How `ours` compares with `theirs` where smaller is better, as a ratio of
/// at least one in the direction it goes: `12.3× faster` when ours is
/// smaller, `8.10× slower` when it is larger (with `better` and `worse` the
/// words for each direction). A ratio below one ("0.12× faster") reads as the
/// opposite of what it means.
pub fn smaller_by(theirs: f64, ours: f64, better: &str, worse: &str) -> String {
    let r = theirs / ours;
    if !r.is_finite() || r <= 0.0 {
        return "n/a".into();
    }
    if r >= 1.0 {
        format!("{} {better}", ratio(r))
    } else {
        format!("{} {worse}", ratio(1.0 / r))
    }
}

/// A value in its unit.
pub fn value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Nanoseconds => time(v),
        Unit::Bytes => bytes(v),
        Unit::PerSecond => rate(v),
        Unit::Count => count(v.round().max(0.0) as u64),
        Unit::Instructions => per_op(v, "instructions"),
        Unit::PageFaults => per_op(v, "page faults"),
        Unit::Syscalls => per_op(v, "system calls"),
    }
}

/// A counted figure per operation: 3 significant figures with a k or M
/// suffix, and what was counted.
pub fn per_op(v: f64, what: &str) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let a = v.abs();
    let n = if a >= 1e6 {
        format!("{}M", sig3(v / 1e6))
    } else if a >= 1e3 {
        format!("{}k", sig3(v / 1e3))
    } else {
        sig3(v)
    };
    format!("{n} {what}")
}

/// The median alone.
pub fn median(s: &Summary) -> String {
    value(s.median, s.unit)
}

/// The median with the interquartile range and sample count.
pub fn spread(s: &Summary) -> String {
    if s.n == 0 {
        return "n/a".into();
    }
    format!(
        "{} [{}–{}] n={}",
        value(s.median, s.unit),
        strip_unit(&value(s.p25, s.unit)),
        value(s.p75, s.unit),
        s.n
    )
}

fn strip_unit(s: &str) -> String {
    s.split(' ').next().unwrap_or(s).to_owned()
}

/// Three significant figures, without trailing zeros beyond them.
fn sig3(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_scale_to_three_significant_figures() {
        assert_eq!(time(4_123.0), "4.12 µs");
        assert_eq!(time(23_400_000.0), "23.4 ms");
        assert_eq!(time(512.0), "512 ns");
        assert_eq!(bytes(16_896.0), "16.5 KiB");
        assert_eq!(bytes(22.0 * 1024.0 * 1024.0), "22.0 MiB");
        assert_eq!(bytes(100.0), "100 B");
        assert_eq!(rate(190_123.4), "190,123/s");
        assert_eq!(count(1_100_000), "1,100,000");
        assert_eq!(ratio(1234.4), "1,234×");
        assert_eq!(ratio(2.5), "2.50×");
        assert_eq!(time(f64::NAN), "n/a");
        assert_eq!(per_op(25_612.4, "instructions"), "25.6k instructions");
        assert_eq!(per_op(1_234_567.0, "instructions"), "1.23M instructions");
        assert_eq!(per_op(0.0, "page faults"), "0.00 page faults");
    }

    #[test]
    fn a_comparison_is_worded_in_the_direction_it_goes() {
        assert_eq!(
            smaller_by(1.34e6, 10.8e6, "faster", "slower"),
            "8.06× slower"
        );
        assert_eq!(
            smaller_by(1.34e6, 12.4e3, "faster", "slower"),
            "108× faster"
        );
        assert_eq!(smaller_by(116.0, 116.0, "less", "more"), "1.00× less");
        assert_eq!(smaller_by(1.0, 0.0, "faster", "slower"), "n/a");
        assert_eq!(smaller_by(f64::NAN, 1.0, "faster", "slower"), "n/a");
    }
}
