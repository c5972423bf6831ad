//! Signing in and out of the dashboard.

use axum::Form;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use miaas_core::model::LoginRequest;
use minijinja::context;
use serde::Deserialize;

use super::session::{self, SESSION_COOKIE, csrf_of, csrf_ok, over_https, set_cookie};
use super::view::render;
use crate::state::AppState;

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    csrf: String,
}

fn login_page(state: &AppState, headers: &HeaderMap, status: StatusCode, error: &str) -> Response {
    let (csrf, new_cookie) = csrf_of(state, headers);
    let mut response = render(
        status,
        "login.html",
        context! { csrf => csrf, error => error, auth => true, section => "login" },
    );
    if let Some(cookie) = new_cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

/// `GET /ui/login`.
pub async fn form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.auth {
        return Redirect::to("/ui").into_response();
    }
    login_page(&state, &headers, StatusCode::OK, "")
}

/// `POST /ui/login`: a password login; the access token becomes the session.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !state.auth {
        return Redirect::to("/ui").into_response();
    }
    if !csrf_ok(&headers, Some(&form.csrf)) {
        return login_page(
            &state,
            &headers,
            StatusCode::FORBIDDEN,
            "The form expired: please sign in again.",
        );
    }
    let request = LoginRequest {
        username: form.username,
        password: form.password,
    };
    match state.service.login(&request).await {
        Ok(token) => {
            let cookie = set_cookie(
                SESSION_COOKIE,
                &token.access_token,
                Some(token.expires_in),
                over_https(&state, &headers),
            );
            let mut response = Redirect::to("/ui").into_response();
            *response.status_mut() = StatusCode::SEE_OTHER;
            response.headers_mut().append(SET_COOKIE, cookie);
            response
        }
        Err(err) => {
            let status = crate::error::status_of(&err);
            let message = if status == StatusCode::UNAUTHORIZED {
                "Wrong username or password.".to_string()
            } else {
                err.to_string()
            };
            login_page(&state, &headers, status, &message)
        }
    }
}

/// The sign-out form's field.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/logout`: forgets the session.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !csrf_ok(&headers, Some(&form.csrf)) {
        return (StatusCode::FORBIDDEN, "missing or wrong CSRF token").into_response();
    }
    let secure = session::over_https(&state, &headers);
    let mut response = Redirect::to("/ui/login").into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
        .headers_mut()
        .append(SET_COOKIE, set_cookie(SESSION_COOKIE, "", Some(0), secure));
    response
}
