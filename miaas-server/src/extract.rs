//! Extractors whose rejections are JSON `{"detail": ...}` like every other error.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest request body accepted (bigger ones get `413`).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body. It must be declared `Content-Type: application/json` (or
/// `application/*+json`), else `415` before the body is read: a web page can send a
/// cross-origin `text/plain` or form body without asking first, but not a JSON one.
/// Malformed JSON is `400`; a missing, mistyped or out-of-range field is `422`
/// naming the field; an oversized body `413`.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        check_content_type(req.headers())?;
        let bytes = Bytes::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expected a JSON body: send Content-Type: application/json",
        ));
    };
    let mime = value.to_str().unwrap_or_default().to_ascii_lowercase();
    let essence = mime.split(';').next().unwrap_or_default().trim();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("Expected a JSON body (Content-Type: application/json), got {essence:?}"),
    ))
}

pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    use serde_json::error::Category;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => malformed(bytes, &inner),
            Category::Data => {
                let detail = if path == "." {
                    format!("Invalid request body: {inner}")
                } else {
                    format!("{path}: {inner}")
                };
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
            }
        }
    })?;
    deserializer.end().map_err(|err| malformed(bytes, &err))?;
    Ok(value)
}

fn malformed(bytes: &[u8], err: &serde_json::Error) -> ApiError {
    let what = if bytes.iter().all(u8::is_ascii_whitespace) {
        "the request body is empty".to_string()
    } else {
        err.to_string()
    };
    ApiError::new(StatusCode::BAD_REQUEST, format!("Malformed JSON: {what}"))
}

/// The `Authorization: Bearer <token>` credential, if the request carries one.
#[derive(Debug, Clone, Default)]
pub struct BearerToken(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| token.trim().to_string())
            })
            .filter(|token| !token.is_empty());
        Ok(Self(token))
    }
}

/// Query parameters whose rejection is JSON.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// A path parameter whose rejection is JSON.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Sample {
        #[allow(dead_code)]
        name: String,
        #[allow(dead_code)]
        inner: Inner,
    }

    #[derive(Debug, Deserialize)]
    struct Inner {
        #[allow(dead_code)]
        count: u32,
    }

    #[test]
    fn syntax_errors_are_400_and_field_errors_422_with_the_path() {
        let syntax = parse_json::<Sample>(b"{\"name\": ").unwrap_err();
        assert_eq!(syntax.status(), StatusCode::BAD_REQUEST);
        let empty = parse_json::<Sample>(b"").unwrap_err();
        assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
        let missing = parse_json::<Sample>(br#"{"inner": {"count": 1}}"#).unwrap_err();
        assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let mistyped =
            parse_json::<Sample>(br#"{"name": "a", "inner": {"count": -1}}"#).unwrap_err();
        assert_eq!(mistyped.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let trailing = parse_json::<Sample>(br#"{"name": "a", "inner": {"count": 1}} x"#);
        assert!(trailing.is_err());
        assert!(parse_json::<Sample>(br#"{"name": "a", "inner": {"count": 1}}"#).is_ok());
    }

    #[test]
    fn content_types_other_than_json_are_refused() {
        let mut headers = HeaderMap::new();
        let missing = check_content_type(&headers).unwrap_err();
        assert_eq!(missing.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(check_content_type(&headers).is_ok());
        headers.insert(
            header::CONTENT_TYPE,
            "application/merge-patch+json".parse().unwrap(),
        );
        assert!(check_content_type(&headers).is_ok());
        for other in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ] {
            headers.insert(header::CONTENT_TYPE, other.parse().unwrap());
            let err = check_content_type(&headers).unwrap_err();
            assert_eq!(err.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{other}");
        }
    }
}
