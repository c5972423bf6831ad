//! Lenient numbers: agents written in Python often send sizes as floats
//! (`bytes / 1024 / 1024`), so whole-unit fields accept any non-negative number and
//! keep its whole part. They are documented as numbers with a minimum of 0.

use serde::de::{Error, Unexpected, Visitor};
use serde::{Deserializer, Serializer};
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{KnownFormat, Object, SchemaFormat};

/// The largest accepted value: the range of a signed 64-bit integer, which every
/// database and JSON client can hold.
pub const MAX_WHOLE: u64 = i64::MAX as u64;

struct WholeVisitor;

impl Visitor<'_> for WholeVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a non-negative number up to {MAX_WHOLE}")
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<u64, E> {
        if v > MAX_WHOLE {
            return Err(E::invalid_value(Unexpected::Unsigned(v), &self));
        }
        Ok(v)
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<u64, E> {
        // 2^63 is exactly representable; MAX_WHOLE is not (it rounds up to 2^63).
        if (0.0..9_223_372_036_854_775_808.0).contains(&v) {
            // Truncation is the point: 450000.7 MB free is 450000 whole MB.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            return Ok(v.trunc() as u64);
        }
        Err(E::invalid_value(Unexpected::Float(v), &self))
    }
}

/// Deserializes a non-negative number into its whole part.
pub fn deserialize_whole<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    deserializer.deserialize_any(WholeVisitor)
}

/// As [`deserialize_whole`], where `null` means unknown.
pub fn deserialize_optional_whole<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    struct OptionalWhole;
    impl<'de> Visitor<'de> for OptionalWhole {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "null or a non-negative number up to {MAX_WHOLE}")
        }

        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            deserialize_whole(d).map(Some)
        }
    }
    deserializer.deserialize_option(OptionalWhole)
}

/// As [`deserialize_whole`], for counts that fit in 32 bits.
pub fn deserialize_whole_u32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let value = deserialize_whole(deserializer)?;
    u32::try_from(value).map_err(|_| {
        D::Error::invalid_value(Unexpected::Unsigned(value), &"a count up to 4294967295")
    })
}

/// Serializes as a plain integer.
pub fn serialize_whole<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(*value)
}

/// OpenAPI schema of a whole-unit field.
pub fn whole_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .minimum(Some(0.0))
        .maximum(Some(MAX_WHOLE as f64))
        .description(Some("A non-negative number; a fractional part is dropped."))
        .build()
}

/// OpenAPI schema of a whole-unit field that may be `null` (unknown).
pub fn optional_whole_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
        .minimum(Some(0.0))
        .maximum(Some(MAX_WHOLE as f64))
        .description(Some(
            "A non-negative number (a fractional part is dropped), or null when unknown.",
        ))
        .build()
}

/// OpenAPI schema of a whole-unit count that fits in 32 bits.
pub fn count_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .minimum(Some(0.0))
        .maximum(Some(f64::from(u32::MAX)))
        .description(Some("A non-negative number; a fractional part is dropped."))
        .build()
}

/// OpenAPI schema of a percentage.
pub fn percent_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
        .minimum(Some(0.0))
        .maximum(Some(100.0))
        .build()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Sample {
        #[serde(deserialize_with = "super::deserialize_whole")]
        mb: u64,
    }

    fn parse(value: serde_json::Value) -> Result<u64, serde_json::Error> {
        serde_json::from_value::<Sample>(json!({ "mb": value })).map(|s| s.mb)
    }

    #[test]
    fn integers_and_floats_become_whole_numbers() {
        assert_eq!(parse(json!(450000)).unwrap(), 450000);
        assert_eq!(parse(json!(791.0)).unwrap(), 791);
        assert_eq!(parse(json!(450000.7)).unwrap(), 450000);
    }

    #[derive(Debug, Deserialize)]
    struct OptionalSample {
        #[serde(default, deserialize_with = "super::deserialize_optional_whole")]
        mb: Option<u64>,
    }

    #[test]
    fn optional_whole_numbers_may_be_null_or_missing() {
        let parse = |v| serde_json::from_value::<OptionalSample>(v).map(|s| s.mb);
        assert_eq!(parse(json!({})).unwrap(), None);
        assert_eq!(parse(json!({"mb": null})).unwrap(), None);
        assert_eq!(parse(json!({"mb": 12.9})).unwrap(), Some(12));
        assert!(parse(json!({"mb": -1})).is_err());
    }

    #[test]
    fn negatives_strings_and_huge_values_are_refused() {
        assert!(parse(json!(-1)).is_err());
        assert!(parse(json!(-0.5)).is_err());
        assert!(parse(json!("12")).is_err());
        assert!(parse(json!(u64::MAX)).is_err());
        assert!(parse(json!(1e300)).is_err());
        assert!(parse(json!(9_223_372_036_854_775_808.0_f64)).is_err());
        assert!(parse(json!(9_223_372_036_854_774_784.0_f64)).unwrap() <= super::MAX_WHOLE);
    }
}
