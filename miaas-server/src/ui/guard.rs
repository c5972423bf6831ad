//! The dashboard's checks as extractors, like the API's [`Allowed`](crate::auth::Allowed):
//! a page states the right it needs in its signature ([`Permitted`]), a form
//! also its CSRF token ([`Checked`]). A refused request never reaches the handler.

use std::marker::PhantomData;

use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::page::refusal;
use super::session::{Viewer, csrf_ok};
use crate::auth::Rule;
use crate::state::AppState;

/// A form's fields, in order (a name may come twice: the last counts).
pub(super) type Fields = Vec<(String, String)>;

/// The value of field `name` (the last one given).
pub(super) fn field<'a>(form: &'a Fields, name: &str) -> Option<&'a str> {
    form.iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// A signed-in viewer allowed to do `R`: else the redirect to the login page
/// (signed out) or the `403` page.
pub(super) struct Permitted<R: Rule> {
    /// Who is looking.
    pub viewer: Viewer,
    rule: PhantomData<R>,
}

impl<R: Rule> FromRequestParts<AppState> for Permitted<R> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        match refusal(&viewer, state.auth, R::PERMISSION) {
            Some(refused) => Err(refused),
            None => Ok(Self {
                viewer,
                rule: PhantomData,
            }),
        }
    }
}

/// A form posted by a signed-in viewer allowed to do `R`, with the CSRF token of
/// its cookie. Checked in this order, the first failure answering: the form's
/// body (axum's rejection), the viewer (the redirect to the login page), the
/// CSRF token (`403`, text), the right (the `403` page).
pub(super) struct Checked<R: Rule> {
    /// Who posted it.
    pub viewer: Viewer,
    /// The form's fields (`csrf` among them).
    pub form: Fields,
    rule: PhantomData<R>,
}

impl<R: Rule> FromRequest<AppState> for Checked<R> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Form(form) =
            Form::<Fields>::from_request(Request::from_parts(parts.clone(), body), state)
                .await
                .map_err(IntoResponse::into_response)?;
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        if !csrf_ok(&parts.headers, field(&form, "csrf")) {
            return Err(csrf_refused());
        }
        if let Some(refused) = refusal(&viewer, state.auth, R::PERMISSION) {
            return Err(refused);
        }
        Ok(Self {
            viewer,
            form,
            rule: PhantomData,
        })
    }
}

/// The `403` of a request without the CSRF token of its cookie.
fn csrf_refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        "missing or wrong CSRF token: reload the page and try again",
    )
        .into_response()
}
