//! The Jinja engine templates render with: strict undefined, a fuel limit, no
//! loader (so no file access), and a formatter that writes every `{{ value }}` as
//! a YAML scalar a value cannot break out of.

use std::collections::{BTreeMap, HashSet};

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

use crate::{Error, Result};

/// The most one rendering may write: far more than any compose document needs.
pub const MAX_OUTPUT_BYTES: usize = 1024 * 1024;

/// How many instructions one rendering may run: plenty for a compose document,
/// and a loop that would run forever stops here.
const FUEL: u64 = 200_000;

/// Marks a secret parameter in the values handed to a template: `\0name\0`. The
/// formatter writes it as a `${MIAAS_SECRET_NAME}` reference; no value a caller
/// gives can hold `\0`.
const SECRET_MARK: char = '\0';

/// The environment variable a secret parameter becomes.
pub fn secret_env_name(parameter: &str) -> String {
    format!("MIAAS_SECRET_{}", parameter.to_ascii_uppercase())
}

/// What a secret parameter is in the template's values.
pub(super) fn secret_placeholder(parameter: &str) -> String {
    format!("{SECRET_MARK}{parameter}{SECRET_MARK}")
}

fn engine() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(64);
    env.set_formatter(|out, _state, value| {
        let json = serde_json::to_value(value).map_err(|err| {
            minijinja::Error::new(minijinja::ErrorKind::BadSerialization, err.to_string())
        })?;
        let mut text = String::new();
        write_scalar(&mut text, &json)
            .map_err(|what| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, what))?;
        out.write_str(&text).map_err(minijinja::Error::from)
    });
    env
}

/// The error of a template that does not compile or render, with its line.
fn template_error(err: &minijinja::Error) -> Error {
    let what = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    match err.line() {
        Some(line) => Error::Invalid(format!("compose: line {line}: {what}")),
        None => Error::Invalid(format!("compose: {what}")),
    }
}

/// Checks the Jinja syntax of `source`; answers the variables it uses that no
/// template defines for itself (globals such as `range` left out).
pub(super) fn variables_of(source: &str) -> Result<HashSet<String>> {
    let env = engine();
    let template = env
        .template_from_str(source)
        .map_err(|err| template_error(&err))?;
    let globals: HashSet<&str> = env.globals().map(|(name, _)| name).collect();
    Ok(template
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !globals.contains(name.as_str()))
        .collect())
}

/// Renders `source` with `values`: at most [`MAX_OUTPUT_BYTES`] of it.
pub(super) fn render(source: &str, values: &BTreeMap<String, Value>) -> Result<String> {
    let env = engine();
    let template = env
        .template_from_str(source)
        .map_err(|err| template_error(&err))?;
    let mut out = BoundedOutput::default();
    match template.render_captured_to(values, &mut out) {
        Ok(_) => String::from_utf8(out.bytes)
            .map_err(|_| Error::Invalid("compose: the rendering is not UTF-8".into())),
        Err(_) if out.overflowed => Err(Error::Invalid(format!(
            "compose: the rendering is longer than {} KiB",
            MAX_OUTPUT_BYTES / 1024
        ))),
        Err(err) => Err(template_error(&err)),
    }
}

/// What a rendering writes, refusing to grow past [`MAX_OUTPUT_BYTES`].
#[derive(Default)]
struct BoundedOutput {
    bytes: Vec<u8>,
    overflowed: bool,
}

impl std::io::Write for BoundedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_OUTPUT_BYTES {
            self.overflowed = true;
            return Err(std::io::Error::other("the rendering is too long"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes `value` as YAML flow: JSON, with strings double-quoted and escaped so
/// that YAML reads them back exactly, `$` doubled (Compose would interpolate it),
/// and secret placeholders as `${MIAAS_SECRET_…}`.
fn write_scalar(out: &mut String, value: &Value) -> Result<(), String> {
    match value {
        Value::String(text) => write_string(out, text)?,
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_scalar(out, item)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, key)?;
                out.push_str(": ");
                write_scalar(out, item)?;
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
    Ok(())
}

fn write_string(out: &mut String, text: &str) -> Result<(), String> {
    use std::fmt::Write;
    out.push('"');
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            SECRET_MARK => {
                let mut name = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == SECRET_MARK {
                        closed = true;
                        break;
                    }
                    name.push(c);
                }
                let whole = closed
                    && !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !whole {
                    return Err("a secret parameter can only be used whole".into());
                }
                out.push_str("${");
                out.push_str(&secret_env_name(&name));
                out.push('}');
            }
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '$' => out.push_str("$$"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // control characters and what YAML takes for line breaks or a BOM
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(value: Value) -> String {
        let mut out = String::new();
        write_scalar(&mut out, &value).expect("scalar");
        out
    }

    #[test]
    fn strings_read_back_exactly_as_yaml() {
        for text in [
            "plain",
            "a: b",
            "x\nservices:\n  evil:\n    image: evil",
            "{{ 7 * 7 }}",
            "&anchor *alias",
            "quote \" and back\\slash",
            "tab\tand\r",
            "line\u{2028}sep\u{85}nel\u{feff}",
            "# not a comment",
            "emoji 🚀",
        ] {
            let yaml = format!("value: {}\n", scalar(Value::String(text.into())));
            let read: BTreeMap<String, String> =
                serde_saphyr::from_str(&yaml).expect("YAML reads it");
            assert_eq!(read["value"], text, "{yaml}");
        }
    }

    #[test]
    fn dollars_are_doubled_and_secrets_become_references() {
        assert_eq!(scalar(Value::String("a$b".into())), r#""a$$b""#);
        let placeholder = format!("u:{}@db", secret_placeholder("password"));
        assert_eq!(
            scalar(Value::String(placeholder)),
            r#""u:${MIAAS_SECRET_PASSWORD}@db""#
        );
        let mut out = String::new();
        assert!(write_scalar(&mut out, &Value::String("\0pass".into())).is_err());
    }

    #[test]
    fn numbers_and_booleans_are_plain() {
        assert_eq!(scalar(serde_json::json!(2)), "2");
        assert_eq!(scalar(serde_json::json!(0.5)), "0.5");
        assert_eq!(scalar(serde_json::json!(true)), "true");
        assert_eq!(scalar(serde_json::json!(["a", 1])), r#"["a", 1]"#);
    }

    #[test]
    fn undefined_names_and_endless_loops_fail() {
        let values = BTreeMap::new();
        let err = render("a: {{ nope }}", &values).unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("undefined"), "{err}");
        let err = render(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            &values,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("fuel"), "{err}");
        let err = render(
            "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}",
            &values,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("longer than 1024 KiB"), "{err}");
        let err = render("{% include 'x' %}", &values)
            .unwrap_err()
            .to_string();
        assert!(err.contains("compose"), "{err}");
    }

    #[test]
    fn syntax_errors_name_their_line() {
        let err = variables_of("services:\n  a:\n    image: {{ image \n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3") || err.contains("line 4"), "{err}");
        let used =
            variables_of("{% set x = 1 %}{{ x }}{{ a ~ b }}{% for i in range(2) %}{% endfor %}")
                .expect("parses");
        let mut used: Vec<_> = used.into_iter().collect();
        used.sort();
        assert_eq!(used, ["a", "b"]);
    }
}
