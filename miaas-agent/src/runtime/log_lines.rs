//! Reading the lines `docker compose logs --no-color --timestamps` prints:
//! `web-1  | 2026-12-02T10:00:00.123456789Z hello` (Compose v2) or
//! `web_1  | 2026-...` (v1).

use miaas_core::model::LogLine;

/// One printed line as a [`LogLine`] (Compose merges stdout and stderr, so the
/// stream is `stdout`); `None` for Compose's own lines (`Attaching to …`), which
/// have no `service | ` prefix.
pub(crate) fn parse(text: &str) -> Option<LogLine> {
    let (prefix, rest) = text.split_once("| ").or_else(|| {
        // a container's empty line: `web-1  |`
        text.strip_suffix('|').map(|prefix| (prefix, ""))
    })?;
    let service = service_of(prefix.trim());
    if service.is_empty() || service.contains(char::is_whitespace) {
        return None;
    }
    let (ts, line) = match rest.split_once(' ') {
        Some((first, line)) if looks_like_time(first) => (Some(first.to_string()), line),
        _ if looks_like_time(rest.trim_end()) => (Some(rest.trim_end().to_string()), ""),
        _ => (None, rest),
    };
    Some(LogLine {
        ts,
        service,
        stream: "stdout".into(),
        line: line.to_string(),
    })
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
    fn compose_v1_and_v2_lines_are_read_and_compose_s_own_skipped() {
        let v2 = parse("web-1  | 2026-12-02T10:00:00.123456789Z hello | world").unwrap();
        assert_eq!(v2.service, "web");
        assert_eq!(v2.ts.as_deref(), Some("2026-12-02T10:00:00.123456789Z"));
        assert_eq!(v2.line, "hello | world");
        let v1 = parse("db_1   | 2026-12-02T10:00:00.5Z ready").unwrap();
        assert_eq!((v1.service.as_str(), v1.line.as_str()), ("db", "ready"));
        let empty = parse("api-12  | 2026-12-02T10:00:00Z").unwrap();
        assert_eq!((empty.service.as_str(), empty.line.as_str()), ("api", ""));
        assert_eq!(parse("web-1  |").unwrap().line, "");
        assert!(
            parse("Attaching to miaas-web_app_1").is_none(),
            "Compose's own line"
        );
        assert!(
            parse("no prefix | at all").is_none(),
            "not a container prefix"
        );
    }
}
