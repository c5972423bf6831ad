//! Rendering the dashboard's pages: minijinja over HTML templates embedded in the
//! binary, escaping every value (names, messages, logs are text, never markup).

use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value};

/// The page templates, by name.
const TEMPLATES: [(&str, &str); 13] = [
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("nodes.html", include_str!("templates/nodes.html")),
    ("node.html", include_str!("templates/node.html")),
    (
        "deployments.html",
        include_str!("templates/deployments.html"),
    ),
    ("deployment.html", include_str!("templates/deployment.html")),
    ("deploy.html", include_str!("templates/deploy.html")),
    ("plan.html", include_str!("templates/plan.html")),
    ("admin.html", include_str!("templates/admin.html")),
    ("add_node.html", include_str!("templates/add_node.html")),
    ("error.html", include_str!("templates/error.html")),
    ("events.html", include_str!("templates/events.html")),
];

fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut env = Environment::new();
        // names ending in .html are escaped for HTML (minijinja's default)
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        for (name, source) in TEMPLATES {
            if let Err(err) = env.add_template(name, source) {
                tracing::error!(%name, %err, "a dashboard template does not compile");
            }
        }
        env.add_filter("ago", ago);
        env.add_filter("size_mb", size_mb);
        env.add_filter("percent", percent);
        env.add_filter("health_note", health_note);
        env
    })
}

/// `name` rendered with `context`, as a response of `status`.
pub fn render(status: StatusCode, name: &str, context: Value) -> Response {
    let rendered = environment()
        .get_template(name)
        .and_then(|template| template.render(context));
    match rendered {
        // never stored: pages show what one user may see, and a page kept for the
        // back button would keep its event streams open (browsers allow six
        // connections to a server)
        Ok(html) => (
            status,
            [(axum::http::header::CACHE_CONTROL, "no-store")],
            Html(html),
        )
            .into_response(),
        Err(err) => {
            tracing::error!(template = %name, error = %format!("{err:#}"), "rendering a page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><p>The page could not be rendered.</p>"),
            )
                .into_response()
        }
    }
}

/// `12s ago`, `3m ago`, from epoch seconds and `now`.
fn ago(then: f64, now: f64) -> String {
    let seconds = (now - then).max(0.0) as u64;
    match seconds {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}m ago", s / 60),
        s if s < 172_800 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

/// What calls for attention in a deployment's health and restarts
/// (`starting`, `unhealthy, 3 restarts`), empty when nothing does:
/// `{{ d.health | health_note(d.restarts) }}`.
fn health_note(health: Option<String>, restarts: Option<u32>) -> String {
    let health = health
        .as_deref()
        .and_then(miaas_core::model::DeploymentHealth::parse);
    miaas_core::model::health_note(health, restarts.unwrap_or(0)).unwrap_or_default()
}

/// `512 MiB`, `16.0 GiB`.
fn size_mb(mb: f64) -> String {
    if mb >= 1024.0 {
        format!("{:.1} GiB", mb / 1024.0)
    } else {
        format!("{mb:.0} MiB")
    }
}

/// `part` of `whole` in percent, 0 to 100 (0 for an empty whole).
fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        (part / whole * 100.0).clamp(0.0, 100.0).round()
    } else {
        0.0
    }
}
