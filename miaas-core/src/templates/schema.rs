//! A template's parameters as a JSON Schema (draft 2020-12), for form generators
//! and validators.

use serde_json::{Map, Value, json};

use crate::model::{ParameterType, TemplateParameter};

/// The schema of the `params` object `parameters` accept.
pub fn parameters_schema(parameters: &[TemplateParameter]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for p in parameters {
        properties.insert(p.name.clone(), parameter_schema(p));
        if p.required && p.default.is_none() && p.generate.is_none() {
            required.push(Value::String(p.name.clone()));
        }
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn parameter_schema(p: &TemplateParameter) -> Value {
    let mut schema = Map::new();
    let kind = match p.kind {
        ParameterType::String | ParameterType::Secret | ParameterType::Enum => "string",
        ParameterType::Integer => "integer",
        ParameterType::Number => "number",
        ParameterType::Boolean => "boolean",
    };
    schema.insert("type".into(), kind.into());
    if let Some(label) = &p.label {
        schema.insert("title".into(), label.clone().into());
    }
    if let Some(description) = &p.description {
        schema.insert("description".into(), description.clone().into());
    }
    if let Some(default) = &p.default
        && p.kind != ParameterType::Secret
    {
        schema.insert("default".into(), default.clone());
    }
    if !p.options.is_empty() {
        schema.insert("enum".into(), p.options.clone().into());
    }
    if let Some(pattern) = &p.pattern {
        schema.insert("pattern".into(), format!("^(?:{pattern})$").into());
    }
    let (low, high) = match p.kind {
        ParameterType::Integer | ParameterType::Number => ("minimum", "maximum"),
        _ => ("minLength", "maxLength"),
    };
    let bound = |n: f64| {
        if n.fract() == 0.0 && n.abs() < 9e15 {
            Value::from(n as i64)
        } else {
            json!(n)
        }
    };
    if let Some(min) = p.min {
        schema.insert(low.into(), bound(min));
    }
    if let Some(max) = p.max {
        schema.insert(high.into(), bound(max));
    }
    if p.kind == ParameterType::Secret {
        schema.insert("writeOnly".into(), true.into());
        schema.insert("format".into(), "password".into());
    }
    Value::Object(schema)
}
