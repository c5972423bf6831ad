//! The web dashboard at `/ui`: server-rendered HTML with htmx (vendored, embedded)
//! for live parts. Signed in with the existing users (a session cookie); every
//! form carries a CSRF token; the roles decide which buttons show, and every
//! action checks the role again.

mod actions;
mod assets;
mod gpus;
mod live;
mod login;
mod pages;
mod session;
mod view;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use miaas_core::access::Permission;
use minijinja::{Value, context};

use crate::state::AppState;
use session::Viewer;

/// The dashboard's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(pages::overview))
        .route("/ui/", get(pages::overview))
        .route("/ui/login", get(login::form).post(login::sign_in))
        .route("/ui/logout", post(login::sign_out))
        .route("/ui/nodes", get(pages::nodes))
        .route("/ui/nodes/{node_id}", get(pages::node))
        .route("/ui/nodes/{node_id}/{action}", post(actions::node_action))
        .route("/ui/deployments", get(pages::deployments))
        .route("/ui/deployments/{deployment_id}", get(pages::deployment))
        .route(
            "/ui/deployments/{deployment_id}/delete",
            post(actions::delete_deployment),
        )
        .route("/ui/deploy", get(pages::deploy).post(actions::deploy))
        .route("/ui/deploy/preview", post(actions::preview))
        .route("/ui/admin", get(pages::admin))
        .route("/ui/admin/{action}", post(actions::admin_action))
        .route("/ui/stream", get(live::changes))
        .route("/ui/assets/{name}", get(assets::asset))
}

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
fn page(viewer: &Viewer, auth: bool, section: &str, name: &str, context: Value) -> Response {
    page_with_status(viewer, auth, section, name, context, StatusCode::OK)
}

fn page_with_status(
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
fn error_page(viewer: &Viewer, auth: bool, err: &miaas_core::Error) -> Response {
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
