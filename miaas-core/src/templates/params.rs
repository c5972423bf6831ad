//! Template parameters: checking their definitions, and turning the values a
//! caller gives into the values a template renders with. Every error names the
//! parameter (`params.gpus: …`).

use std::collections::{BTreeMap, HashSet};

use rand::Rng;
use rand::distr::{Alphanumeric, SampleString};
use serde_json::{Number, Value};

use super::render::{secret_env_name, secret_placeholder};
use crate::model::{Generator, ParameterType, TemplateParameter};
use crate::{Error, Result};

/// The longest text value accepted, in characters.
const MAX_TEXT_CHARS: usize = 4096;
/// The longest generated secret.
const MAX_GENERATED: u32 = 256;

fn invalid(name: &str, what: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("params.{name}: {what}"))
}

fn definition_error(name: &str, what: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("parameters.{name}: {what}"))
}

/// Checks the definitions: names, types and their options, and that each
/// default is a valid value.
pub(super) fn check_definitions(parameters: &[TemplateParameter]) -> Result<()> {
    let mut seen = HashSet::new();
    for p in parameters {
        let name = p.name.as_str();
        let valid_name = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && name.len() <= 64;
        if !valid_name {
            return Err(Error::Invalid(format!(
                "parameters: {name:?} is not a name (letters, digits and `_`, at most 64, \
                 not starting with a digit)"
            )));
        }
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(definition_error(name, "declared twice"));
        }
        if (p.kind == ParameterType::Enum) == p.options.is_empty() {
            return Err(definition_error(
                name,
                "`options` lists the values of an `enum`, and only of an `enum`",
            ));
        }
        if p.generate.is_some() && p.kind != ParameterType::Secret {
            return Err(definition_error(name, "only a `secret` can be generated"));
        }
        if let Some(length) = p.length
            && !(8..=MAX_GENERATED).contains(&length)
        {
            return Err(definition_error(
                name,
                format_args!("`length` must be 8 to {MAX_GENERATED}"),
            ));
        }
        if let Some(pattern) = &p.pattern {
            if !matches!(p.kind, ParameterType::String | ParameterType::Secret) {
                return Err(definition_error(
                    name,
                    "`pattern` applies to a `string` or a `secret`",
                ));
            }
            full_match(pattern).map_err(|err| {
                definition_error(
                    name,
                    format_args!("`pattern` is not a regular expression: {err}"),
                )
            })?;
        }
        if let (Some(min), Some(max)) = (p.min, p.max)
            && min > max
        {
            return Err(definition_error(name, "`min` is greater than `max`"));
        }
        if let Some(default) = &p.default {
            value_of(p, default).map_err(|err| {
                definition_error(name, format_args!("the default is not valid: {err}"))
            })?;
        }
    }
    Ok(())
}

fn full_match(pattern: &str) -> std::result::Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
}

/// A value of a secret parameter, before it is known: the one given, the one a
/// deployment already has, the default, or a generated one.
#[derive(Clone, PartialEq)]
pub struct SecretValue {
    /// The parameter.
    pub parameter: String,
    /// The environment variable it becomes.
    pub env: String,
    given: Option<String>,
    default: Option<String>,
    generate: Option<(Generator, u32)>,
    required: bool,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("parameter", &self.parameter)
            .field("env", &self.env)
            .finish_non_exhaustive()
    }
}

impl SecretValue {
    /// The value: given, else `existing` (what the deployment had: generated
    /// values are made once and kept across updates), else the default, else a
    /// new generated one; an error when it is required and there is none.
    pub fn resolve(&self, existing: Option<&str>) -> Result<String> {
        if let Some(value) = self.given.as_ref() {
            return Ok(value.clone());
        }
        if let Some(value) = existing {
            return Ok(value.to_string());
        }
        if let Some(value) = self.default.as_ref() {
            return Ok(value.clone());
        }
        match self.generate {
            Some((generator, length)) => Ok(generate(generator, length)),
            None if self.required => Err(invalid(&self.parameter, "missing (required)")),
            None => Ok(String::new()),
        }
    }
}

fn generate(generator: Generator, length: u32) -> String {
    let length = length as usize;
    let mut rng = rand::rng();
    match generator {
        Generator::Password => Alphanumeric.sample_string(&mut rng, length),
        Generator::Hex => (0..length)
            .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
            .collect(),
    }
}

/// The values a template renders with, from what was given.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// What the template sees (secrets as placeholders).
    pub values: BTreeMap<String, Value>,
    /// What is shown: every value, secrets as `***`.
    pub shown: BTreeMap<String, Value>,
    /// The secret parameters, to resolve against the deployment.
    pub secrets: Vec<SecretValue>,
}

/// Checks `given` against `parameters` and fills in the defaults; `sample`
/// stands a value of its type in for a required parameter that has none (for
/// checking a template).
pub(super) fn resolve(
    parameters: &[TemplateParameter],
    given: &BTreeMap<String, Value>,
    sample: bool,
) -> Result<Resolved> {
    if let Some(unknown) = given
        .keys()
        .find(|k| !parameters.iter().any(|p| &p.name == *k))
    {
        let known: Vec<&str> = parameters.iter().map(|p| p.name.as_str()).collect();
        return Err(invalid(
            unknown,
            format_args!(
                "unknown parameter (this template has: {})",
                known.join(", ")
            ),
        ));
    }
    let mut resolved = Resolved {
        values: BTreeMap::new(),
        shown: BTreeMap::new(),
        secrets: Vec::new(),
    };
    for p in parameters {
        let given = given.get(&p.name).filter(|v| !v.is_null());
        if p.kind == ParameterType::Secret {
            let text =
                |v: &Value| value_of(p, v).map(|v| v.as_str().unwrap_or_default().to_string());
            resolved.secrets.push(SecretValue {
                parameter: p.name.clone(),
                env: secret_env_name(&p.name),
                given: given.map(text).transpose()?,
                default: p.default.as_ref().map(text).transpose()?,
                generate: p
                    .generate
                    .map(|g| (g, p.length.unwrap_or(default_length(g)))),
                required: p.required && !sample,
            });
            resolved
                .values
                .insert(p.name.clone(), Value::String(secret_placeholder(&p.name)));
            resolved
                .shown
                .insert(p.name.clone(), Value::String(crate::model::REDACTED.into()));
            continue;
        }
        let value = match (given, &p.default) {
            (Some(value), _) => value_of(p, value)?,
            (None, Some(default)) => value_of(p, default)?,
            (None, None) if sample => sample_of(p),
            (None, None) if p.required => return Err(invalid(&p.name, "missing (required)")),
            (None, None) => Value::Null,
        };
        resolved.shown.insert(p.name.clone(), value.clone());
        resolved.values.insert(p.name.clone(), value);
    }
    Ok(resolved)
}

fn default_length(generator: Generator) -> u32 {
    match generator {
        Generator::Password => 24,
        Generator::Hex => 32,
    }
}

/// A value of `p`'s type, for rendering a template whose required parameter has
/// no default.
fn sample_of(p: &TemplateParameter) -> Value {
    match p.kind {
        ParameterType::Integer | ParameterType::Number => {
            Value::from(p.min.unwrap_or(0.0).max(0.0).min(p.max.unwrap_or(f64::MAX)) as i64)
        }
        ParameterType::Boolean => Value::Bool(false),
        ParameterType::Enum => Value::String(p.options.first().cloned().unwrap_or_default()),
        ParameterType::String | ParameterType::Secret => Value::String("example".into()),
    }
}

/// `value` as parameter `p` takes it: of its type (text that reads as a number
/// or boolean is taken, as a form or `--set` sends it), within its bounds.
fn value_of(p: &TemplateParameter, value: &Value) -> Result<Value> {
    let name = p.name.as_str();
    let shown = || match p.kind {
        ParameterType::Secret => "another type".to_string(),
        _ => shorten(value),
    };
    match p.kind {
        ParameterType::String | ParameterType::Secret => {
            let Value::String(text) = value else {
                return Err(invalid(
                    name,
                    format_args!("expected text, got {}", shown()),
                ));
            };
            check_text(p, text)?;
            Ok(value.clone())
        }
        ParameterType::Enum => match value.as_str() {
            Some(text) if p.options.iter().any(|o| o == text) => Ok(value.clone()),
            _ => Err(invalid(
                name,
                format_args!("must be one of {} (got {})", p.options.join(", "), shown()),
            )),
        },
        ParameterType::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(text) if text == "true" || text == "false" => {
                Ok(Value::Bool(text == "true"))
            }
            _ => Err(invalid(
                name,
                format_args!("expected true or false, got {}", shown()),
            )),
        },
        ParameterType::Integer => {
            let number = match value {
                Value::Number(n) => n.as_i64(),
                Value::String(text) => text.trim().parse::<i64>().ok(),
                _ => None,
            }
            .ok_or_else(|| invalid(name, format_args!("expected an integer, got {}", shown())))?;
            check_range(p, number as f64, &number.to_string())?;
            Ok(Value::from(number))
        }
        ParameterType::Number => {
            let number = match value {
                Value::Number(n) => n.as_f64(),
                Value::String(text) => text.trim().parse::<f64>().ok(),
                _ => None,
            }
            .filter(|n| n.is_finite())
            .ok_or_else(|| invalid(name, format_args!("expected a number, got {}", shown())))?;
            check_range(p, number, &number.to_string())?;
            Ok(Number::from_f64(number).map_or(Value::Null, Value::Number))
        }
    }
}

fn check_text(p: &TemplateParameter, text: &str) -> Result<()> {
    let name = p.name.as_str();
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(invalid(
            name,
            format_args!("at most {MAX_TEXT_CHARS} characters (got {chars})"),
        ));
    }
    let single_line = p.kind == ParameterType::Secret;
    if let Some(c) = text
        .chars()
        .find(|&c| c.is_control() && (single_line || !matches!(c, '\n' | '\t' | '\r')))
    {
        return Err(invalid(
            name,
            format_args!("must not contain the control character {c:?}"),
        ));
    }
    if let Some(min) = p.min
        && (chars as f64) < min
    {
        return Err(invalid(name, format_args!("at least {min} characters")));
    }
    if let Some(max) = p.max
        && (chars as f64) > max
    {
        return Err(invalid(name, format_args!("at most {max} characters")));
    }
    if let Some(pattern) = &p.pattern {
        let regex = full_match(pattern).map_err(|err| invalid(name, err))?;
        if !regex.is_match(text) {
            let shown = if p.kind == ParameterType::Secret {
                "the value".to_string()
            } else {
                shorten(&Value::String(text.into()))
            };
            return Err(invalid(
                name,
                format_args!("{shown} does not match the pattern {pattern}"),
            ));
        }
    }
    Ok(())
}

fn check_range(p: &TemplateParameter, number: f64, shown: &str) -> Result<()> {
    if let Some(min) = p.min
        && number < min
    {
        return Err(invalid(
            &p.name,
            format_args!("{shown} is out of range: at least {min}"),
        ));
    }
    if let Some(max) = p.max
        && number > max
    {
        return Err(invalid(
            &p.name,
            format_args!("{shown} is out of range: at most {max}"),
        ));
    }
    Ok(())
}

/// A value for an error message: JSON, cut at 60 characters.
fn shorten(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}
