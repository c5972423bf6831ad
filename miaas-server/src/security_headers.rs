//! Headers on every answer that keep the dashboard from being framed by another
//! site (clickjacking: a page that shows ours under its own buttons), a file from
//! being sniffed into another type, and our URLs from leaking to other sites:
//! `Content-Security-Policy`, `X-Frame-Options: DENY`, `X-Content-Type-Options:
//! nosniff` and `Referrer-Policy: same-origin`, on `/ui` pages and API answers
//! alike (an error included).
//!
//! The dashboard's policy runs scripts only from files the server itself serves:
//! no inline script, no inline event handler, no `eval`, so markup that slipped
//! into a page cannot run. Its one allowance is inline `style` attributes (the
//! usage bars' widths); `<style>` elements are refused too. The documentation
//! pages keep the same script rule but get a policy each ([`SWAGGER_POLICY`],
//! [`REDOC_POLICY`]).

use axum::Router;
use axum::http::{HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

/// The policy of the dashboard and the API.
pub const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     style-src-attr 'unsafe-inline'; img-src 'self' data:; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The policy of `/docs` (Swagger UI). Its scripts are files of the server too,
/// but it writes inline styles, and its page is given a `<base href="/docs/">`,
/// so these are allowed here, and only here.
pub const SWAGGER_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; \
     base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// The policy of `/redoc` (ReDoc). Its scripts are files of the server too, but it
/// writes its styles as `<style>` elements and runs its search in a worker made
/// from a `blob:` URL, so these are allowed here, and only here. (Its bundle also
/// asks for Redocly's logo from cdn.redoc.ly: refused, so nothing is fetched from
/// outside, and ReDoc then leaves the logo out.)
pub const REDOC_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `router` with the four headers on every answer; a policy a route set itself
/// (see [`policy`]) is kept.
pub fn secured(router: Router) -> Router {
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
}

/// The layer that gives a route its own `policy` in place of [`POLICY`].
pub fn policy(policy: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    )
}
