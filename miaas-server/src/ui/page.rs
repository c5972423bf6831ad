//! What every dashboard page shares: the layout's context, a page and an error
//! page as responses, the refusal of a viewer without a right, and the redirect
//! after a form. Imports no page of its own: every resource module builds on it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use miaas_core::access::Permission;
use minijinja::{Value, context};

use super::session::Viewer;
use super::view;

/// What every page's layout needs: who is looking, what they may do, the CSRF
/// token, and which section is open.
fn base(viewer: &Viewer, section: &str, auth: bool) -> Value {
    context! {
        user => viewer.name(),
        auth => auth,
        csrf => viewer.csrf.clone(),
        cursor => viewer.cursor,
        section => section,
        can_deploy => viewer.may(Permission::Deploy),
        can_manage_nodes => viewer.may(Permission::ManageNodes),
        can_deregister => viewer.may(Permission::DeregisterNodes),
        is_admin => viewer.may(Permission::ManageAccess),
        now => miaas_core::clock::Clock::now(&miaas_core::clock::SystemClock),
    }
}

/// A page: the layout's context merged with `context`.
pub(super) fn page(
    viewer: &Viewer,
    auth: bool,
    section: &str,
    name: &str,
    context: Value,
) -> Response {
    page_with_status(viewer, auth, section, name, context, StatusCode::OK)
}

/// A page answered with `status`.
pub(super) fn page_with_status(
    viewer: &Viewer,
    auth: bool,
    section: &str,
    name: &str,
    context: Value,
    status: StatusCode,
) -> Response {
    let merged = context! { ..base(viewer, section, auth), ..context };
    viewer.finish(view::render(status, name, merged))
}

/// An error page (`404`, `403`, ...) with what went wrong.
pub(super) fn error_page(viewer: &Viewer, auth: bool, err: &miaas_core::Error) -> Response {
    let status = crate::error::status_of(err);
    let detail = if status.is_server_error() {
        tracing::error!(error = %err, "a dashboard page failed");
        "Something went wrong on the server; see its log.".to_string()
    } else {
        err.to_string()
    };
    page_with_status(
        viewer,
        auth,
        "",
        "error.html",
        context! { status => status.as_u16(), detail => detail },
        status,
    )
}

/// The `403` page when the viewer may not do `permission`.
pub(super) fn refusal(viewer: &Viewer, auth: bool, permission: Permission) -> Option<Response> {
    (viewer.principal.require(permission))
        .err()
        .map(|err| error_page(viewer, auth, &err))
}

/// `303 See Other` to `to`: where a form sends the browser once done.
pub(super) fn see_other(to: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
}
