//! Who looks at the dashboard: a session cookie holding a login's access token
//! (`HttpOnly`, `SameSite=Strict`, `Secure` over HTTPS), and a CSRF token every
//! form and htmx request sends back (double submit: a cookie a foreign page can
//! neither read nor send, and the same value in the request).

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use miaas_core::access::{Permission, Principal};
use rand::RngCore;

use crate::state::AppState;

/// The cookie of a signed-in user: a login's access token.
pub const SESSION_COOKIE: &str = "miaas_session";
/// The cookie of the CSRF token.
pub const CSRF_COOKIE: &str = "miaas_csrf";
/// The header htmx requests carry the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// Whether the browser reached the server over HTTPS (directly, or as a proxy in
/// front says).
pub fn over_https(state: &AppState, headers: &HeaderMap) -> bool {
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    forwarded || state.public_url.starts_with("https://")
}

/// A `Set-Cookie` for the dashboard's paths.
pub fn set_cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> HeaderValue {
    let mut text = format!("{name}={value}; Path=/ui; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Who is looking, and the CSRF token of their pages. As an extractor, a
/// signed-out request (with `--auth on`) is answered with the redirect to the
/// login page instead of reaching the handler.
pub struct Viewer {
    /// Who it is (`Unrestricted` with `--auth off`).
    pub principal: Principal,
    /// The CSRF token to put in forms.
    pub csrf: String,
    /// The newest event when the page was made: its live parts follow from there,
    /// so that no change between making it and connecting is missed.
    pub cursor: u64,
    /// A new CSRF cookie to set, when the browser had none.
    new_csrf: Option<HeaderValue>,
}

impl Viewer {
    /// The viewer of a request: a redirect to the login page when signed out
    /// (with `--auth on`).
    async fn of(state: &AppState, headers: &HeaderMap) -> Result<Self, Response> {
        let principal = if state.auth {
            let token = cookie(headers, SESSION_COOKIE);
            match state.service.authenticate(token).await {
                Ok(principal @ (Principal::User { .. } | Principal::ApiToken { .. })) => principal,
                _ => return Err(Redirect::to("/ui/login").into_response()),
            }
        } else {
            Principal::Unrestricted
        };
        let (csrf, new_csrf) = csrf_of(state, headers);
        let cursor = match state.service.events().bounds().await {
            Ok(bounds) => bounds.latest,
            Err(_) => 0,
        };
        Ok(Self {
            principal,
            csrf,
            cursor,
            new_csrf,
        })
    }

    /// Whether the viewer may do `permission` (buttons shown only then; the
    /// handlers check again).
    pub fn may(&self, permission: Permission) -> bool {
        self.principal.may(permission)
    }

    /// The name shown in the header.
    pub fn name(&self) -> String {
        match &self.principal {
            Principal::User { username, .. } => username.clone(),
            Principal::ApiToken { name, .. } => name.clone(),
            _ => String::new(),
        }
    }

    /// `response`, setting the CSRF cookie when it is new.
    pub fn finish(&self, mut response: Response) -> Response {
        if let Some(cookie) = &self.new_csrf {
            response.headers_mut().append(SET_COOKIE, cookie.clone());
        }
        response
    }
}

impl FromRequestParts<AppState> for Viewer {
    /// `303 See Other` to `/ui/login`.
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        Self::of(state, &parts.headers).await
    }
}

/// The browser's CSRF token, or a new one (with its cookie).
pub fn csrf_of(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookie(headers, CSRF_COOKIE).filter(|v| v.len() == 64 && is_hex(v)) {
        Some(token) => (token.to_string(), None),
        None => {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            let token = hex::encode(bytes);
            let cookie = set_cookie(CSRF_COOKIE, &token, None, over_https(state, headers));
            (token, Some(cookie))
        }
    }
}

fn is_hex(text: &str) -> bool {
    text.chars().all(|c| c.is_ascii_hexdigit())
}

/// Whether a form or htmx request carries the CSRF token of its cookie.
pub fn csrf_ok(headers: &HeaderMap, form_token: Option<&str>) -> bool {
    let Some(expected) = cookie(headers, CSRF_COOKIE) else {
        return false;
    };
    let sent = form_token.or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()));
    sent.is_some_and(|sent| {
        use subtle::ConstantTimeEq;
        sent.len() == expected.len() && bool::from(sent.as_bytes().ct_eq(expected.as_bytes()))
    })
}
