//! A pinned join token against a server in the middle: its `/cacerts` answers
//! the real CA (so the pin matches) and its own, and its certificate is signed
//! by its own CA. A real `miaas agent` must keep only the pinned CA, refuse the
//! connection, and never send it the join token; a `ca.pem` kept with both
//! certificates (as an older agent stored the whole answer) is reduced the same
//! way.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use miaas_core::access::pinned::{ca_hash, certificate_pem, pin};
use miaas_tests::AgentProcess;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA: its certificate (DER) and what signs with it.
fn certificate_authority(name: &str) -> (Vec<u8>, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("a key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let der = params.self_signed(&key).expect("a CA").der().to_vec();
    (der, Issuer::new(params, key))
}

/// One request the man in the middle received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
}

/// A TLS server in the middle, recording what reaches it.
struct Middle {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    refused_handshakes: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Middle {
    /// Serves `bundle` at `/cacerts` and `401` to everything else, over TLS with
    /// a certificate for 127.0.0.1 signed by `issuer`.
    async fn start(bundle: String, issuer: &Issuer<'_, KeyPair>) -> Self {
        let key = KeyPair::generate().expect("a key");
        let params = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
        let leaf = params.signed_by(&key, issuer).expect("a leaf");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("a TLS config");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = seen.clone();
        let router = Router::new().fallback(move |request: Request| {
            let recorded = recorded.clone();
            let bundle = bundle.clone();
            async move { answer(&recorded, &bundle, &request) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let refused_handshakes = Arc::new(AtomicUsize::new(0));
        let refused = refused_handshakes.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let router = router.clone();
                let refused = refused.clone();
                tokio::spawn(async move {
                    match acceptor.accept(stream).await {
                        Ok(tls) => {
                            let _ = Builder::new(TokioExecutor::new())
                                .serve_connection(
                                    TokioIo::new(tls),
                                    TowerToHyperService::new(router),
                                )
                                .await;
                        }
                        Err(_) => {
                            refused.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        Self {
            base: format!("https://{addr}"),
            seen,
            refused_handshakes,
            task,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Middle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(recorded: &Mutex<Vec<Seen>>, bundle: &str, request: &Request) -> Response {
    let authorization = request
        .headers()
        .get("authorization")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    recorded.lock().unwrap().push(Seen {
        method: request.method().to_string(),
        path: request.uri().path().to_string(),
        authorization,
    });
    if request.uri().path() == "/cacerts" {
        return bundle.to_string().into_response();
    }
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({"detail": "not so fast"})),
    )
        .into_response()
}

/// Runs an agent with a token pinned to `real_ca` against `middle` until it
/// either refused the middle's certificate or sent it anything but a `/cacerts`
/// fetch; then checks that nothing but `/cacerts` (without credentials) reached
/// the middle, and that the agent keeps only the pinned CA.
async fn refused_without_the_join_token(
    middle: &Middle,
    real_ca: &[u8],
    dir: &std::path::Path,
    name: &str,
) {
    let join_token = "miaas_join_thesecretthemiddlemustnotsee";
    let pinned = pin(join_token, &ca_hash(real_ca));
    let mut agent = AgentProcess::start(
        &middle.base,
        &pinned,
        dir,
        name,
        &["--runtime", "simulated"],
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sent_more = middle.seen().iter().any(|s| s.path != "/cacerts");
        if sent_more || middle.refused_handshakes.load(Ordering::SeqCst) > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent neither refused nor called the middle: {}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = middle.seen();
    for request in &seen {
        assert!(
            request.method == "GET" && request.path == "/cacerts",
            "the agent called the server in the middle: {seen:?}\n{}",
            agent.log()
        );
        assert!(request.authorization.is_none(), "{seen:?}");
    }
    let kept = std::fs::read_to_string(agent.state_dir.join("ca.pem")).expect("ca.pem kept");
    assert_eq!(kept, certificate_pem(real_ca), "only the pinned CA is kept");
    assert!(!agent.log().contains(join_token), "{}", agent.log());
    agent.kill();
}

#[tokio::test]
async fn a_pinned_agent_trusts_only_the_pinned_ca_of_a_bundle_from_a_server_in_the_middle() {
    let dir = tempfile::tempdir().unwrap();
    let (real_ca, _) = certificate_authority("the real CA");
    let (middle_ca, middle_issuer) = certificate_authority("the middle's CA");
    let bundle = format!(
        "{}{}",
        certificate_pem(&real_ca),
        certificate_pem(&middle_ca)
    );
    let middle = Middle::start(bundle.clone(), &middle_issuer).await;

    // first contact: the bundle is fetched, and only the pinned CA kept
    refused_without_the_join_token(&middle, &real_ca, dir.path(), "first").await;
    assert!(
        middle.seen().iter().any(|s| s.path == "/cacerts"),
        "the CA was fetched on first contact"
    );

    // a ca.pem kept with the whole bundle is reduced to the pinned CA
    let middle = Middle::start(bundle.clone(), &middle_issuer).await;
    let state_dir = dir.path().join("agent-kept");
    std::fs::create_dir(&state_dir).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&state_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    std::fs::write(state_dir.join("ca.pem"), &bundle).unwrap();
    refused_without_the_join_token(&middle, &real_ca, dir.path(), "kept").await;
}
