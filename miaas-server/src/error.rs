//! Errors: the server's own enum, and the one mapping of every failure to a status
//! and a JSON `{"detail": ...}` body.

use axum::Json;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// What can stop the server from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The core failed (database URL, connection, migrations).
    #[error(transparent)]
    Core(#[from] miaas_core::Error),
    /// Binding or serving failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub detail: String,
    /// The request's id (also in `X-Request-Id` and in the server's log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ErrorBody {
    /// A body for the request being served.
    pub fn new(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            request_id: miaas_core::events::origin::request_id(),
        }
    }
}

/// An HTTP error answer: a status and a `detail`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
    /// A `401` for a credential this server issued that no longer works: not a
    /// guess, so not counted by the failed-authentication limit.
    expired: bool,
    /// Seconds for the `Retry-After` header of a `429` (or `503`).
    retry_after: Option<u64>,
}

/// Marks a `401` answer given to a credential that once worked (expired, revoked).
#[derive(Debug, Clone, Copy)]
pub struct ExpiredCredential;

/// `401`, `403` and `429`: the answers of every route that needs a credential.
/// Only documents them (the answers themselves are [`ApiError`]s).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum AuthErrors {
    /// No credential, or one that is invalid, expired or revoked.
    #[response(status = 401, description = "No valid credential")]
    Unauthorized(ErrorBody),
    /// A valid credential without the permission.
    #[response(status = 403, description = "The credential does not allow this")]
    Forbidden(ErrorBody),
    /// Too many failed authentications from this address (only failing attempts
    /// are answered so).
    #[response(
        status = 429,
        description = "Too many failed authentications from this address; see Retry-After"
    )]
    TooManyFailures(ErrorBody),
}

impl ApiError {
    /// An error with this status and detail.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            expired: false,
            retry_after: None,
        }
    }

    /// `429` with a `Retry-After` of `retry_after` seconds.
    pub fn too_many(detail: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, detail)
        }
    }

    /// `503` with a `Retry-After` of `retry_after` seconds.
    pub fn unavailable(detail: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
        }
    }

    /// The status it answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// The HTTP status a core error is answered with.
pub(crate) fn status_of(err: &miaas_core::Error) -> StatusCode {
    use miaas_core::Error as E;
    match err {
        E::NotFound(_) => StatusCode::NOT_FOUND,
        E::Conflict(_) => StatusCode::CONFLICT,
        E::Gone(_) => StatusCode::GONE,
        E::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        E::Unauthorized(_) | E::Expired(_) => StatusCode::UNAUTHORIZED,
        E::Forbidden(_) => StatusCode::FORBIDDEN,
        E::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        E::Busy { .. } | E::Unavailable(_) | E::InUse(_) => StatusCode::SERVICE_UNAVAILABLE,
        E::DatabaseUrl(_) | E::Database(_) | E::Migrate(_) | E::Corrupt(_) | E::KeyMismatch(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

impl From<miaas_core::Error> for ApiError {
    fn from(err: miaas_core::Error) -> Self {
        use miaas_core::Error as E;
        match &err {
            E::Throttled { retry_after, .. } => {
                return Self::too_many(err.to_string(), *retry_after);
            }
            E::Busy { retry_after, .. } => {
                return Self::unavailable(err.to_string(), *retry_after);
            }
            _ => {}
        }
        let status = status_of(&err);
        if status.is_server_error() {
            tracing::error!(error = %err, "request failed");
            let detail = if status == StatusCode::SERVICE_UNAVAILABLE {
                "Service unavailable: the database does not answer"
            } else {
                "Internal server error"
            };
            return Self::new(status, detail);
        }
        let expired = matches!(err, E::Expired(_));
        Self {
            expired,
            ..Self::new(status, err.to_string())
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::new(rejection.status(), rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, rejection.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::new(status, "Request body too large (limit: 1 MiB)");
        }
        Self::new(status, rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody::new(self.detail))).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            if self.expired {
                response.extensions_mut().insert(ExpiredCredential);
            }
        }
        response
    }
}
