//! Joining a machine in one command: `GET /install.sh` (public), the script that
//! installs and starts the agent, and `GET /download/miaas-linux-<arch>` (and
//! `.sha256`), the binary it installs. The one-liner that runs it, with this
//! server's pin and a join token, is [`install_command`].

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;

use crate::downloads::{PREFIX, is_architecture};
use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::state::AppState;

/// The script, with `@SERVER_URL@` and `@PUBLIC_KEY_PIN@` to fill in.
const SCRIPT: &str = include_str!("../../assets/install.sh");

/// The routes (public: a machine joining has no credential but its join token).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/install.sh", get(script))
        .route("/download/{file}", get(download))
}

/// `text` as one shell word, in single quotes.
pub fn shell_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The pin clients need: the server's public key, when it serves HTTPS under a
/// CA of its own (a public CA's certificate needs none).
fn pin_needed(state: &AppState) -> Option<String> {
    let tls = state.tls.as_ref()?;
    tls.self_signed().then(|| tls.public_key_pin()).flatten()
}

/// The one-liner that joins a machine: `curl … /install.sh | sh -s - --join-token
/// '<token>'`, pinned to this server's public key when its CA is its own.
pub fn install_command(state: &AppState, join_token: &str) -> String {
    let url = format!("{}/install.sh", state.public_url);
    let curl = match pin_needed(state) {
        Some(pin) => format!(
            "curl -fsSL --pinnedpubkey {} -k {}",
            shell_quoted(&pin),
            shell_quoted(&url)
        ),
        None => format!("curl -fsSL {}", shell_quoted(&url)),
    };
    format!("{curl} | sh -s - --join-token {}", shell_quoted(join_token))
}

/// Why [`install_command`] is unsafe or will not work as it is.
pub fn install_warnings(state: &AppState) -> Vec<String> {
    let url = &*state.public_url;
    let mut warnings = Vec::new();
    if url.starts_with("http://") {
        warnings.push(
            "this server serves plain HTTP: anyone on the network path can change the script \
             (run as root) and read the join token; start it with --tls auto"
                .to_string(),
        );
    }
    let host = crate::config::url_host(url).unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    if loopback {
        warnings.push(format!(
            "the server's public URL is {url}, which another machine reaches as itself: \
             start the server with --public-url https://<its name>:<port>"
        ));
    }
    warnings
}

/// `GET /install.sh`: the install script for this server.
async fn script(State(state): State<AppState>) -> Response {
    let text = SCRIPT
        .replacen("@SERVER_URL@", &shell_quoted(&state.public_url), 1)
        .replacen(
            "@PUBLIC_KEY_PIN@",
            &shell_quoted(&pin_needed(&state).unwrap_or_default()),
            1,
        );
    (
        [
            (header::CONTENT_TYPE, "text/x-shellscript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

/// `GET /download/miaas-linux-<arch>` (the binary) and `….sha256` (its hash, as
/// `sha256sum` prints it).
async fn download(
    State(state): State<AppState>,
    ApiPath(file): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (name, hash_only) = match file.strip_suffix(".sha256") {
        Some(name) => (name, true),
        None => (file.as_str(), false),
    };
    let arch = name
        .strip_prefix(PREFIX)
        .filter(|arch| is_architecture(arch))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no such download: {file} (downloads are {PREFIX}<arch>)"),
            )
        })?;
    let binaries = &state.agent_binaries;
    let Some(path) = binaries.binary(arch) else {
        let offered = binaries.offered().into_keys().collect::<Vec<_>>();
        let offer = if offered.is_empty() {
            "none (start the server with --agent-binaries DIR)".to_string()
        } else {
            offered.join(", ")
        };
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no agent binary for linux-{arch}; this server offers: {offer}"),
        ));
    };
    let unreadable = |err: std::io::Error| {
        tracing::warn!(path = %path.display(), error = %err, "agent binary unreadable");
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("the agent binary for linux-{arch} cannot be read"),
        )
    };
    if hash_only {
        let hash = binaries.sha256(&path).await.map_err(unreadable)?;
        return Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{hash}  {name}\n"),
        )
            .into_response());
    }
    let Some(turn) = binaries.turn_to_send() else {
        let mut busy = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{} downloads are being sent; try again in a few seconds",
                crate::downloads::PARALLEL_DOWNLOADS
            ),
        )
        .into_response();
        busy.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        return Ok(busy);
    };
    let file = tokio::fs::File::open(&path).await.map_err(unreadable)?;
    let length = file.metadata().await.map_err(unreadable)?.len();
    let chunks = tokio_util::io::ReaderStream::new(file).map(move |chunk| {
        // the turn is given back when the body is done with (sent or dropped)
        let _sending = &turn;
        chunk
    });
    let body = Body::from_stream(chunks);
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, length.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_one_shell_word() {
        assert_eq!(shell_quoted("a b"), "'a b'");
        assert_eq!(shell_quoted("it's"), r"'it'\''s'");
    }
}
