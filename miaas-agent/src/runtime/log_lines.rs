//! Reading the lines `docker compose logs --no-color --timestamps` prints:
//! `web-1  | 2026-12-02T10:00:00.123456789Z hello` (Compose v2) or
//! `web_1  | 2026-...` (v1).

use miaas_core::model::LogLine;

/// One printed line as a [`LogLine`] (Compose merges stdout and stderr, so the
/// stream is `stdout`).
pub(crate) fn parse(text: &str) -> LogLine {
    let (service, rest) = match text.split_once("| ") {
        Some((prefix, rest)) => (service_of(prefix.trim()), rest),
        None => (String::new(), text),
    };
    let (ts, line) = match rest.split_once(' ') {
        Some((first, line)) if looks_like_time(first) => (Some(first.to_string()), line),
        _ if looks_like_time(rest.trim_end()) => (Some(rest.trim_end().to_string()), ""),
        _ => (None, rest),
    };
    LogLine {
        ts,
        service,
        stream: "stdout".into(),
        line: line.to_string(),
    }
}

/// `web-1` → `web`, `web_1` → `web` (the container's index dropped).
fn service_of(container: &str) -> String {
    match container.rsplit_once(['-', '_']) {
        Some((service, index))
            if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) =>
        {
            service.to_string()
        }
        _ => container.to_string(),
    }
}

fn looks_like_time(word: &str) -> bool {
    word.len() >= 20
        && word.as_bytes().get(4) == Some(&b'-')
        && word.as_bytes().get(10) == Some(&b'T')
        && humantime::parse_rfc3339_weak(word.trim_end_matches('Z')).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_v1_and_v2_lines_are_read() {
        let v2 = parse("web-1  | 2026-12-02T10:00:00.123456789Z hello | world");
        assert_eq!(v2.service, "web");
        assert_eq!(v2.ts.as_deref(), Some("2026-12-02T10:00:00.123456789Z"));
        assert_eq!(v2.line, "hello | world");
        let v1 = parse("db_1   | 2026-12-02T10:00:00.5Z ready");
        assert_eq!((v1.service.as_str(), v1.line.as_str()), ("db", "ready"));
        let bare = parse("no prefix at all");
        assert_eq!(
            (bare.service.as_str(), bare.ts, bare.line.as_str()),
            ("", None, "no prefix at all")
        );
        let empty = parse("api-12  | 2026-12-02T10:00:00Z");
        assert_eq!((empty.service.as_str(), empty.line.as_str()), ("api", ""));
    }
}
