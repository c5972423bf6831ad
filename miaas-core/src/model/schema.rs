//! Hand-written OpenAPI schemas for fields whose rules derive cannot express.

use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Array, KnownFormat, Object, SchemaFormat};

/// An IPv4 or IPv6 address.
pub fn ip_schema() -> Schema {
    let address = |format| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
    };
    Schema::AnyOf(
        AnyOfBuilder::new()
            .item(address(KnownFormat::Ipv4))
            .item(address(KnownFormat::Ipv6))
            .description(Some("An IPv4 or IPv6 address"))
            .build(),
    )
}

/// An environment map: string values, names without `=` and not empty.
pub fn env_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(ObjectBuilder::new().schema_type(Type::String)))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(256))
                .pattern(Some("^[^=\\x00]+$")),
        ))
        .build()
}

/// Node tags: up to 100 names without whitespace or `/ ? # % \`.
pub fn tag_list_schema() -> Array {
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(253))
                .pattern(Some(r"^[^\s/?#%\\\u0000-\u001f\u007f-\u009f]+$")),
        )
        .max_items(Some(100))
        .build()
}
