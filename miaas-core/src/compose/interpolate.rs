//! Compose's variable interpolation, done by the server so that what is judged is
//! what runs: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+alternative}`, `${VAR+alternative}`
//! and `$$` for a literal `$`, over every string value of the document (keys are
//! not interpolated, as in Compose). A name the environment does not hold is
//! unset, as in a clean environment: `${VAR}` is then empty. Defaults may nest
//! (`${A:-${B}}`), as in the Compose specification.
//!
//! [`escape`] is the other half: a document whose every `$` is written `$$`
//! leaves Compose nothing to interpolate on the node.
//!
//! `$A` is two bytes and `A` may be most of a request: an interpolated document
//! holds at most [`MAX_INTERPOLATED_BYTES`] of text (keys and strings), and its
//! interpolation stops as soon as it would hold more.

use serde_json::Value;

use super::invalid;
use crate::Result;

/// The most text (keys and string values, in bytes) an interpolated document
/// may hold: far more than any deployment needs.
pub const MAX_INTERPOLATED_BYTES: usize = 8 * 1024 * 1024;

/// `document` with every string value interpolated from `lookup` (a name's value,
/// `None` when it is unset), holding at most [`MAX_INTERPOLATED_BYTES`] of text.
/// The error names the value's place in the document.
pub fn interpolate<'a>(
    document: &Value,
    lookup: &impl Fn(&str) -> Option<&'a str>,
) -> Result<Value> {
    interpolate_within(document, lookup, MAX_INTERPOLATED_BYTES)
}

/// As [`interpolate`], with at most `room` bytes of text in the result.
pub fn interpolate_within<'a>(
    document: &Value,
    lookup: &impl Fn(&str) -> Option<&'a str>,
    room: usize,
) -> Result<Value> {
    let mut path = Vec::new();
    let mut room = room;
    walk(document, lookup, &mut path, &mut room)
}

fn walk<'a>(
    value: &Value,
    lookup: &impl Fn(&str) -> Option<&'a str>,
    path: &mut Vec<String>,
    room: &mut usize,
) -> Result<Value> {
    let at = |path: &[String], what: String| invalid(format_args!("{}: {what}", path.join(".")));
    match value {
        Value::String(text) if text.contains('$') => substitute_within(text, lookup, room)
            .map(Value::String)
            .map_err(|what| at(path, what)),
        Value::String(text) => {
            take(room, text.len()).map_err(|what| at(path, what))?;
            Ok(value.clone())
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                out.push(walk(item, lookup, path, room)?);
                path.pop();
            }
            Ok(Value::Array(out))
        }
        Value::Object(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (key, item) in map {
                path.push(key.clone());
                take(room, key.len()).map_err(|what| at(path, what))?;
                out.insert(key.clone(), walk(item, lookup, path, room)?);
                path.pop();
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

/// Takes `bytes` of the `room` left, or says the document would be too large.
fn take(room: &mut usize, bytes: usize) -> std::result::Result<(), String> {
    *room = room.checked_sub(bytes).ok_or_else(|| {
        format!(
            "interpolated, the document would hold more than {} MiB of text",
            MAX_INTERPOLATED_BYTES / (1024 * 1024)
        )
    })?;
    Ok(())
}

/// Every `$` of every string value written `$$` (keys as they are), so that
/// Compose's own interpolation gives back exactly these values.
pub fn escape(document: &mut Value) {
    match document {
        Value::String(text) if text.contains('$') => *text = text.replace('$', "$$"),
        Value::Array(items) => items.iter_mut().for_each(escape),
        Value::Object(map) => map.values_mut().for_each(escape),
        _ => {}
    }
}

/// `text` with its variables substituted; an error message when it is not valid
/// interpolation syntax, a required variable is missing, or the result would
/// hold more than [`MAX_INTERPOLATED_BYTES`].
pub fn substitute<'a>(
    text: &str,
    lookup: &impl Fn(&str) -> Option<&'a str>,
) -> std::result::Result<String, String> {
    let mut room = MAX_INTERPOLATED_BYTES;
    substitute_within(text, lookup, &mut room)
}

/// As [`substitute`], taking what it writes from `room` (what nested defaults
/// write is taken again where they are written).
fn substitute_within<'a>(
    text: &str,
    lookup: &impl Fn(&str) -> Option<&'a str>,
    room: &mut usize,
) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        push(&mut out, &rest[..at], room)?;
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            push(&mut out, "$", room)?;
            rest = tail;
        } else if let Some(inside) = after.strip_prefix('{') {
            let close = closing_brace(inside).ok_or_else(|| {
                format!("invalid interpolation format in {text:?}: unclosed `${{`")
            })?;
            let value = braced(&inside[..close], text, lookup, room)?;
            push(&mut out, &value, room)?;
            rest = &inside[close + 1..];
        } else {
            let length = name_length(after);
            if length == 0 {
                return Err(format!(
                    "invalid interpolation format in {text:?}: a `$` must start a variable \
                     (`$NAME`, `${{NAME}}`) or be written `$$`"
                ));
            }
            push(&mut out, lookup(&after[..length]).unwrap_or_default(), room)?;
            rest = &after[length..];
        }
    }
    push(&mut out, rest, room)?;
    Ok(out)
}

/// Appends `piece` to `out`, taking its length from `room`.
fn push(out: &mut String, piece: &str, room: &mut usize) -> std::result::Result<(), String> {
    take(room, piece.len())?;
    out.push_str(piece);
    Ok(())
}

/// The length of the variable name `text` starts with (`[_A-Za-z][_A-Za-z0-9]*`),
/// 0 when it starts with none.
fn name_length(text: &str) -> usize {
    let bytes = text.as_bytes();
    if !bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
    {
        return 0;
    }
    bytes
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .unwrap_or(bytes.len())
}

/// Where the `}` that closes a `${` is in `inside` (the text after the `${`),
/// counting nested `${…}` and skipping `$$`.
fn closing_brace(inside: &str) -> Option<usize> {
    let bytes = inside.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The value of one `${…}` (its inside, without the braces).
fn braced<'a>(
    inside: &str,
    whole: &str,
    lookup: &impl Fn(&str) -> Option<&'a str>,
    room: &mut usize,
) -> std::result::Result<String, String> {
    let length = name_length(inside);
    let bad = || {
        format!(
            "invalid interpolation format in {whole:?}: `${{{inside}}}` (use `${{NAME}}`, \
             `${{NAME:-default}}`, `${{NAME-default}}`, `${{NAME:?error}}`, `${{NAME?error}}`, \
             `${{NAME:+alternative}}` or `${{NAME+alternative}}`)"
        )
    };
    if length == 0 {
        return Err(bad());
    }
    let (name, modifier) = inside.split_at(length);
    let value = lookup(name);
    if modifier.is_empty() {
        return Ok(value.unwrap_or_default().to_string());
    }
    let (when_empty_too, operation) = match modifier.strip_prefix(':') {
        Some(rest) => (true, rest),
        None => (false, modifier),
    };
    let Some(operator) = operation
        .chars()
        .next()
        .filter(|c| matches!(c, '-' | '?' | '+'))
    else {
        return Err(bad());
    };
    let argument = &operation[1..];
    let set = match value {
        Some(v) => !(when_empty_too && v.is_empty()),
        None => false,
    };
    match operator {
        '-' if set => Ok(value.unwrap_or_default().to_string()),
        '-' => substitute_within(argument, lookup, room),
        '?' if set => Ok(value.unwrap_or_default().to_string()),
        '?' => {
            let message = substitute_within(argument, lookup, room)?;
            Err(format!(
                "required variable {name} is missing a value{}",
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            ))
        }
        _ if set => substitute_within(argument, lookup, room),
        _ => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn env() -> BTreeMap<&'static str, &'static str> {
        BTreeMap::from([("TAG", "1.27"), ("EMPTY", ""), ("P", "true"), ("N", "host")])
    }

    fn sub(text: &str) -> std::result::Result<String, String> {
        let env = env();
        substitute(text, &|name| env.get(name).copied())
    }

    #[test]
    fn every_form_of_the_specification() {
        for (text, expected) in [
            ("nginx:${TAG}", "nginx:1.27"),
            ("nginx:$TAG", "nginx:1.27"),
            ("$TAG-x", "1.27-x"),
            ("${MISSING}", ""),
            ("$MISSING/x", "/x"),
            ("${MISSING:-def}", "def"),
            ("${EMPTY:-def}", "def"),
            ("${EMPTY-def}", ""),
            ("${MISSING-def}", "def"),
            ("${TAG:-def}", "1.27"),
            ("${TAG:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${MISSING+alt}", ""),
            ("${TAG:?no tag}", "1.27"),
            ("${EMPTY?set but empty}", ""),
            ("$$TAG", "$TAG"),
            ("$${TAG}", "${TAG}"),
            ("a $$ b", "a $ b"),
            ("${MISSING:-${TAG}}", "1.27"),
            ("${MISSING:-${ALSO:-deep}}!", "deep!"),
            ("${MISSING:-a}b}", "ab}"),
            ("${MISSING:-$$x}", "$x"),
            ("no dollars", "no dollars"),
        ] {
            assert_eq!(sub(text).as_deref(), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bad_syntax_and_missing_required_variables_are_errors() {
        for text in [
            "$", "a $ b", "$1", "${", "${TAG", "${}", "${1A}", "${TAG:x}", "${TAG.x}",
        ] {
            let err = sub(text).unwrap_err();
            assert!(
                err.contains("invalid interpolation format"),
                "{text}: {err}"
            );
        }
        let err = sub("${MISSING:?give MISSING}").unwrap_err();
        assert_eq!(
            err,
            "required variable MISSING is missing a value: give MISSING"
        );
        assert!(sub("${EMPTY:?}").is_err());
        assert!(sub("${MISSING?}").is_err());
        // an error in a branch not taken is not raised
        assert_eq!(sub("${TAG:-${MISSING:?x}}").as_deref(), Ok("1.27"));
    }

    #[test]
    fn values_are_interpolated_keys_are_not_and_errors_name_the_place() {
        let env = env();
        let document = json!({
            "services": {"web": {
                "image": "nginx:${TAG}",
                "privileged": "${P}",
                "environment": {"${TAG}": "$$HOME", "N": ["${N}", 3, true]},
            }}
        });
        let resolved = interpolate(&document, &|name| env.get(name).copied()).unwrap();
        assert_eq!(
            resolved,
            json!({
                "services": {"web": {
                    "image": "nginx:1.27",
                    "privileged": "true",
                    "environment": {"${TAG}": "$HOME", "N": ["host", 3, true]},
                }}
            })
        );
        let bad = json!({"services": {"web": {"command": ["sh", "-c", "echo $1"]}}});
        let err = interpolate(&bad, &|name| env.get(name).copied())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("rendered_compose: services.web.command.2: invalid interpolation"),
            "{err}"
        );
    }

    #[test]
    fn escaping_gives_compose_back_the_same_values() {
        let mut document = json!({"a": {"b": ["x$y", "$$", "${Z}"]}, "k$": "plain"});
        let original = document.clone();
        escape(&mut document);
        assert_eq!(
            document,
            json!({"a": {"b": ["x$$y", "$$$$", "$${Z}"]}, "k$": "plain"})
        );
        let back = interpolate(&document, &|_| Some("WRONG")).unwrap();
        assert_eq!(back, original, "nothing left to interpolate");
    }
}
