//! Numbers for people: sizes in MiB/GiB, times as "12s ago".

/// `512 MiB`, `15.6 GiB`, `2.0 TiB` for a size in MB (MiB, as the API counts).
pub fn size_mb(mb: u64) -> String {
    const GIB: f64 = 1024.0;
    let mb_f = mb as f64;
    if mb_f >= GIB * 1024.0 {
        format!("{:.1} TiB", mb_f / GIB / 1024.0)
    } else if mb_f >= GIB {
        format!("{:.1} GiB", mb_f / GIB)
    } else {
        format!("{mb} MiB")
    }
}

/// `now` minus `then` in the largest fitting unit: `5s`, `12m`, `3h`, `4d`.
pub fn duration_short(seconds: f64) -> String {
    let s = seconds.max(0.0).floor() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// `12s ago`, from epoch seconds.
pub fn ago(now: f64, then: f64) -> String {
    format!("{} ago", duration_short(now - then))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(size_mb(512), "512 MiB");
        assert_eq!(size_mb(2048), "2.0 GiB");
        assert_eq!(size_mb(16000), "15.6 GiB");
        assert_eq!(size_mb(2 * 1024 * 1024), "2.0 TiB");
    }

    #[test]
    fn times_read_as_ages() {
        assert_eq!(ago(100.0, 88.0), "12s ago");
        assert_eq!(duration_short(59.9), "59s");
        assert_eq!(duration_short(61.0), "1m");
        assert_eq!(duration_short(7200.0), "2h");
        assert_eq!(duration_short(3.0 * 86_400.0), "3d");
        assert_eq!(duration_short(-5.0), "0s");
    }
}
