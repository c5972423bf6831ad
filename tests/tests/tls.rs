//! HTTPS without a proxy: the server serves `--tls-cert`/`--tls-key` and reloads
//! them on SIGHUP; `miaas --ca-cert` trusts exactly that CA; an agent joining
//! with a pinned join token trusts the self-signed server on first contact, and
//! refuses a server whose CA does not match the pin. A server certificate marked
//! as a CA is warned about by the server and explained by `miaas` and the agent.

use std::path::Path;

use miaas_tests::{
    AgentProcess, ServerProcess, admin_token_over, binary, eventually, miaas, send, trusting,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use sha2::{Digest, Sha256};

/// A self-signed certificate for 127.0.0.1 and localhost: (PEM, key PEM, DER).
fn self_signed() -> (String, String, Vec<u8>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("a certificate");
    (
        certified.cert.pem(),
        certified.signing_key.serialize_pem(),
        certified.cert.der().to_vec(),
    )
}

fn hash_of(der: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(der)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_pair(dir: &Path, cert: &str, key: &str) {
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
}

#[tokio::test]
async fn https_with_a_pinned_join_token_and_a_reload_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = self_signed();
    write_pair(dir.path(), &cert, &key);
    let db = format!("sqlite://{}", dir.path().join("control_plane.db").display());
    let server = ServerProcess::start(
        &binary("miaas-server"),
        &[
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--database-url",
            &db,
            "--tls-cert",
            "cert.pem",
            "--tls-key",
            "key.pem",
        ],
        dir.path(),
        &[("MIAAS_AUTH", "on")],
    );
    let https = server.base.replace("http://", "https://");
    assert_eq!(
        server.listening("ca_hash").as_deref(),
        Some(hash_of(&der).as_str())
    );

    // the system roots do not know a self-signed certificate; its CA does
    assert!(
        reqwest::get(format!("{https}/health")).await.is_err(),
        "a self-signed certificate is not trusted by default"
    );
    let client = trusting(cert.as_bytes());
    let (status, _) = send(client.get(format!("{https}/health"))).await;
    assert_eq!(status, 200);
    let served = client
        .get(format!("{https}/cacerts"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(served.trim(), cert.trim(), "the CA, as PEM");

    // the admin sees the join token pinned to the CA
    let admin = admin_token_over(&client, &https, dir.path()).await;
    let (status, join) = send(
        client
            .get(format!("{https}/api/v1/cluster/join-token"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, 200, "{join}");
    let plain = join["join_token"].as_str().unwrap().to_string();
    let pinned = format!("{plain}::{}", hash_of(&der));
    assert_eq!(join["ca_hash"], hash_of(&der));
    assert_eq!(join["pinned_join_token"], pinned.as_str());
    assert_eq!(
        ServerProcess::saved_secret(dir.path(), "MIAAS_JOIN_TOKEN_PINNED"),
        pinned
    );

    // the CLI: refused without the CA, served with --ca-cert
    let without = miaas(
        dir.path(),
        &["--server", &https, "--token", &admin, "nodes", "list"],
        &[],
        None,
    );
    assert_eq!(without.code, 1, "{without:?}");
    let with = miaas(
        dir.path(),
        &[
            "--server",
            &https,
            "--token",
            &admin,
            "--ca-cert",
            "cert.pem",
            "nodes",
            "list",
            "-o",
            "json",
        ],
        &[],
        None,
    );
    assert_eq!(with.code, 0, "{with:?}");

    // an agent with a token pinned to another CA refuses the server
    let (_, _, other_der) = self_signed();
    let wrong = format!("{plain}::{}", hash_of(&other_der));
    let mut impostor = AgentProcess::start(
        &https,
        &wrong,
        dir.path(),
        "wrong-pin",
        &["--runtime", "simulated"],
        &[],
    );
    eventually("the agent with a wrong pin stops", || {
        let log = impostor.log();
        async move { log.contains("pins") }
    })
    .await;
    impostor.kill();

    // an agent with the pinned token joins over HTTPS, trusting exactly this CA
    let mut agent = AgentProcess::start(
        &https,
        &pinned,
        dir.path(),
        "tls-node",
        &["--runtime", "simulated"],
        &[],
    );
    let nodes_url = format!("{https}/api/v1/nodes");
    eventually("the agent's node is online", || {
        let request = client.get(&nodes_url).bearer_auth(&admin);
        async move {
            let (_, nodes) = send(request).await;
            nodes.as_array().is_some_and(|nodes| {
                nodes
                    .iter()
                    .any(|n| n["name"] == "tls-node" && n["status"] == "online")
            })
        }
    })
    .await;
    let kept = std::fs::read_to_string(agent.state_dir.join("ca.pem")).expect("the CA kept");
    assert_eq!(kept.trim(), cert.trim());
    agent.stop();

    // a renewed certificate takes effect on SIGHUP, without a restart
    let (renewed, renewed_key, renewed_der) = self_signed();
    write_pair(dir.path(), &renewed, &renewed_key);
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let fresh = trusting(renewed.as_bytes());
    let health = format!("{https}/health");
    eventually("the renewed certificate is served", || {
        let request = fresh.get(&health);
        async move { request.send().await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    let (_, join) = send(
        fresh
            .get(format!("{https}/api/v1/cluster/join-token"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(join["ca_hash"], hash_of(&renewed_der));

    // a broken pair on SIGHUP is refused and the one in use kept
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    let (status, _) = send(fresh.get(&health)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_missing_or_broken_certificate_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), "nonsense").unwrap();
    std::fs::write(dir.path().join("key.pem"), "nonsense").unwrap();
    for args in [
        vec!["--tls-cert", "cert.pem", "--tls-key", "key.pem"],
        vec!["--tls-cert", "missing.pem", "--tls-key", "key.pem"],
        vec!["--tls-cert", "cert.pem"],
    ] {
        let output = std::process::Command::new(binary("miaas-server"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--database-url",
                "sqlite::memory:",
            ])
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}: {said}");
        assert!(
            said.contains("tls") || said.contains("cert"),
            "{args:?}: {said}"
        );
    }
}

/// A self-signed certificate for 127.0.0.1 marked as a CA (`basicConstraints
/// CA:TRUE`), as `openssl req -x509` makes one: (PEM, key PEM, DER).
fn self_signed_ca() -> (String, String, Vec<u8>) {
    let key = KeyPair::generate().expect("a key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("a certificate");
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

#[tokio::test]
async fn a_server_certificate_marked_as_a_ca_is_explained_not_taken_for_a_server_down() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = self_signed_ca();
    write_pair(dir.path(), &cert, &key);
    let server = ServerProcess::start(
        &binary("miaas-server"),
        &[
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--database-url",
            "sqlite::memory:",
            "--tls-cert",
            "cert.pem",
            "--tls-key",
            "key.pem",
        ],
        dir.path(),
        &[],
    );
    let warned = server
        .startup_log()
        .iter()
        .any(|l| l.contains("WARN") && l.contains("is a CA certificate"));
    assert!(warned, "no warning: {:#?}", server.startup_log());
    let https = server.base.replace("http://", "https://");

    // miaas, trusting exactly that certificate, says what is wrong and how to fix it
    let run = miaas(
        dir.path(),
        &["--server", &https, "--ca-cert", "cert.pem", "nodes", "list"],
        &[],
        None,
    );
    assert_ne!(run.code, 0, "{run:?}");
    assert!(!run.stderr.contains("Is it running?"), "{run:?}");
    for words in [
        "is a CA certificate",
        "CA:FALSE",
        "basicConstraints=critical,CA:FALSE",
        "subjectAltName",
    ] {
        assert!(run.stderr.contains(words), "{words:?} missing: {run:?}");
    }

    // so does an agent that pinned it (it never gets as far as its join token)
    let pinned = format!("miaas_join_whatever::{}", hash_of(&der));
    let mut agent = AgentProcess::start(
        &https,
        &pinned,
        dir.path(),
        "ca-cert",
        &["--runtime", "simulated"],
        &[],
    );
    eventually("the agent explains the certificate", || {
        let log = agent.log();
        async move { log.contains("is a CA certificate") && log.contains("CA:FALSE") }
    })
    .await;
    agent.kill();
}
