//! From zero to a joined node: `--tls auto` makes the server its own CA (files,
//! modes, names, renewal with the same key, the same CA after a restart), and the
//! one-liner `miaas tokens join --install-command` prints installs the agent from
//! the server, checks its hash, starts it and waits until the node is online; a
//! tampered binary and a wrong pin are refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use miaas_tests::{ServerProcess, admin_token_over, binary, eventually, miaas, send, trusting};
use serde_json::Value;
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn start(dir: &Path, extra: &[&str]) -> ServerProcess {
    let mut args = vec![
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--database-url",
        "sqlite://control_plane.db",
        "--tls",
        "auto",
    ];
    args.extend_from_slice(extra);
    ServerProcess::start(&binary("miaas-server"), &args, dir, &[("MIAAS_AUTH", "on")])
}

fn https(server: &ServerProcess) -> String {
    server.base.replace("http://", "https://")
}

/// The leaf certificate of `server.pem`, and its SAN names and addresses.
fn leaf_of(chain: &Path) -> (Vec<u8>, Vec<String>) {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let text = std::fs::read(chain).unwrap();
    let all: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(all.len(), 2, "the server certificate, then the CA");
    let (_, leaf) = x509_parser::parse_x509_certificate(&all[0]).unwrap();
    assert!(!leaf.is_ca(), "CA:FALSE");
    let mut names = Vec::new();
    for name in &leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
    {
        match name {
            GeneralName::DNSName(n) => names.push(n.to_string()),
            GeneralName::IPAddress(ip) if ip.len() == 4 => {
                names.push(std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string())
            }
            _ => {}
        }
    }
    (all[0].to_vec(), names)
}

#[tokio::test]
async fn tls_auto_makes_its_own_ca_renews_with_the_same_key_and_keeps_it_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--tls-lifetime",
        "6s",
        "--tls-san",
        "extra.example",
        "--public-url",
        "https://cp.example:8443",
    ];
    let server = start(dir.path(), &args);
    let tls = dir.path().join("control_plane.db.tls");
    assert_eq!(mode(&tls), 0o700);
    for file in ["ca.pem", "ca.key", "server.pem", "server.key"] {
        assert_eq!(mode(&tls.join(file)), 0o600, "{file}");
    }
    let ca_pem = std::fs::read_to_string(tls.join("ca.pem")).unwrap();
    let ca_der = rustls::pki_types::pem::PemObject::from_pem_slice(ca_pem.as_bytes())
        .map(|der: rustls::pki_types::CertificateDer<'static>| der.to_vec())
        .unwrap();
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    assert!(ca.is_ca());
    let years = (ca.validity().not_after.timestamp() - ca.validity().not_before.timestamp())
        / (365 * 24 * 3600);
    assert!(years >= 9, "the CA lives ten years, not {years}");
    assert_eq!(
        ca.signature_algorithm.algorithm,
        x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256
    );
    let ca_hash = format!("sha256:{}", hex(&Sha256::digest(&ca_der)));
    assert_eq!(
        server.listening("ca_hash").as_deref(),
        Some(ca_hash.as_str())
    );

    let (first, names) = leaf_of(&tls.join("server.pem"));
    for name in ["localhost", "127.0.0.1", "cp.example", "extra.example"] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }

    // `miaas --ca-cert <db>.tls/ca.pem` trusts it
    let base = https(&server);
    let client = trusting(&std::fs::read(tls.join("ca.pem")).unwrap());
    let admin = admin_token_over(&client, &base, dir.path()).await;
    let ca_file = tls.join("ca.pem").display().to_string();
    let listed = miaas(
        dir.path(),
        &[
            "--server",
            &base,
            "--token",
            &admin,
            "--ca-cert",
            &ca_file,
            "nodes",
            "list",
        ],
        &[],
        None,
    );
    assert_eq!(listed.code, 0, "{listed:?}");

    // renewed before it expires, with the same key, and served without a restart
    let key = std::fs::read_to_string(tls.join("server.key")).unwrap();
    let (_, old) = x509_parser::parse_x509_certificate(&first).unwrap();
    let old_expiry = old.validity().not_after.timestamp();
    let chain = tls.join("server.pem");
    eventually("the server certificate is renewed", || {
        let renewed = leaf_of(&chain).0 != first;
        async move { renewed }
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(tls.join("server.key")).unwrap(),
        key
    );
    eventually("the first certificate expired", || async move {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        now > old_expiry + 1
    })
    .await;
    let (status, _) = send(client.get(format!("{base}/health"))).await;
    assert_eq!(status, 200, "the renewed certificate is served");

    // a restart serves the same CA
    server.terminate();
    let again = start(dir.path(), &args);
    assert_eq!(std::fs::read_to_string(tls.join("ca.pem")).unwrap(), ca_pem);
    assert_eq!(
        again.listening("ca_hash").as_deref(),
        Some(ca_hash.as_str())
    );
    let (status, _) = send(client.get(format!("{}/health", https(&again)))).await;
    assert_eq!(status, 200);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Stops the agent the script started in the background.
struct Started(PathBuf);

impl Drop for Started {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.0.join("agent.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

fn sh(command: &str, cwd: &Path) -> Output {
    Command::new("sh")
        .args(["-c", command])
        .current_dir(cwd)
        .output()
        .expect("sh runs")
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn file_sha256(path: &Path) -> String {
    hex(&Sha256::digest(std::fs::read(path).unwrap()))
}

#[tokio::test]
async fn the_printed_one_liner_installs_starts_and_joins_an_agent() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let base = https(&server);
    let tls = dir.path().join("control_plane.db.tls");
    let client = trusting(&std::fs::read(tls.join("ca.pem")).unwrap());
    let admin = admin_token_over(&client, &base, dir.path()).await;
    let ca_file = tls.join("ca.pem").display().to_string();
    let printed = miaas(
        dir.path(),
        &[
            "--server",
            &base,
            "--token",
            &admin,
            "--ca-cert",
            &ca_file,
            "tokens",
            "join",
            "--install-command",
        ],
        &[],
        None,
    );
    assert_eq!(printed.code, 0, "{printed:?}");
    let one_liner = printed.stdout.trim().to_string();
    // a public URL of 127.0.0.1 is this machine's own: said, on standard error
    assert!(printed.stderr.contains("--public-url"), "{printed:?}");
    let pinned = ServerProcess::saved_secret(dir.path(), "MIAAS_JOIN_TOKEN_PINNED");
    assert!(
        one_liner.starts_with("curl -fsSL --pinnedpubkey 'sha256//")
            && one_liner.contains(&format!("/install.sh' | sh -s - --join-token '{pinned}'")),
        "{one_liner}"
    );

    // the script passes shellcheck
    let script = client
        .get(format!("{base}/install.sh"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let script_file = dir.path().join("install.sh");
    std::fs::write(&script_file, &script).unwrap();
    match Command::new("shellcheck")
        .arg("-s")
        .arg("sh")
        .arg(&script_file)
        .output()
    {
        Ok(checked) => assert!(checked.status.success(), "{}", text(&checked)),
        Err(_) if std::env::var_os("CI").is_none() => {
            eprintln!("shellcheck is not installed: the script was not checked")
        }
        Err(err) => panic!("shellcheck is needed in CI: {err}"),
    }

    // a wrong pin: curl refuses the server, nothing is installed
    let pin_at = one_liner.find("sha256//").unwrap() + "sha256//".len();
    let wrong = format!(
        "{}{}{}",
        &one_liner[..pin_at],
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        &one_liner[pin_at + 44..]
    );
    let refused = sh(
        &format!("{wrong} --prefix wrong --state-dir wrong-state --no-start"),
        dir.path(),
    );
    // (the pipe's status is sh's, which ran nothing: curl's refusal is the answer)
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("pinned public key"),
        "{}",
        text(&refused)
    );
    assert!(!dir.path().join("wrong").exists());
    assert!(!dir.path().join("wrong-state").exists());

    // the one-liner as printed, installing under the test's folder
    let prefix = dir.path().join("prefix");
    let state = dir.path().join("state");
    let _agent = Started(state.clone());
    let ran = sh(
        &format!(
            "{one_liner} --prefix {} --state-dir {} --no-systemd --runtime simulated --name joined-1",
            prefix.display(),
            state.display()
        ),
        dir.path(),
    );
    assert!(ran.status.success(), "{}", text(&ran));
    let said = String::from_utf8_lossy(&ran.stdout);
    assert!(said.contains("Node joined-1 is online"), "{said}");
    let installed = prefix.join("bin/miaas");
    assert_eq!(file_sha256(&installed), file_sha256(&binary("miaas")));
    assert!(
        said.contains(&file_sha256(&installed)),
        "the hash is checked and shown"
    );
    assert_eq!(mode(&state.join("agent.env")), 0o600);
    let settings = std::fs::read_to_string(state.join("agent.env")).unwrap();
    assert!(
        settings.contains("MIAAS_SERVER=") && !settings.contains("MIAAS_JOIN_TOKEN"),
        "the join token leaves the node once it joined: {settings}"
    );
    // a new connection: the server may have closed the idle one while the script ran
    let client = trusting(&std::fs::read(tls.join("ca.pem")).unwrap());
    let (status, nodes) = send(
        client
            .get(format!("{base}/api/v1/nodes"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, 200);
    let joined: Vec<&Value> = nodes
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["name"] == "joined-1")
        .collect();
    assert_eq!(joined.len(), 1, "{nodes}");
    assert_eq!(joined[0]["status"], "online");
}

#[tokio::test]
async fn a_tampered_binary_and_an_unknown_architecture_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let binaries = dir.path().join("binaries");
    std::fs::create_dir(&binaries).unwrap();
    let arch = std::env::consts::ARCH;
    let file = binaries.join(format!("miaas-linux-{arch}"));
    std::fs::write(&file, b"#!/bin/sh\necho released\n").unwrap();
    std::fs::write(
        binaries.join(format!("miaas-linux-{arch}.sha256")),
        format!("{}  miaas-linux-{arch}\n", file_sha256(&file)),
    )
    .unwrap();
    let folder = binaries.display().to_string();
    let server = ServerProcess::start(
        &binary("miaas-server"),
        &[
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--database-url",
            "sqlite://control_plane.db",
            "--agent-binaries",
            &folder,
        ],
        dir.path(),
        &[("MIAAS_AUTH", "on")],
    );
    let admin = server.admin_token(dir.path()).await;
    let (status, join) = send(
        reqwest::Client::new()
            .get(server.url("/api/v1/cluster/join-token"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, 200, "{join}");
    assert!(
        join["install_warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("plain HTTP") && w.contains("--tls auto")),
        "{join}"
    );
    let one_liner = join["install_command"]
        .as_str()
        .unwrap()
        .replace("--join-token '", "--no-start --join-token '");
    assert!(one_liner.starts_with("curl -fsSL 'http://"), "{one_liner}");
    // as released: installed (not started)
    let fine = sh(
        &format!("{one_liner} --prefix ok --state-dir ok-state"),
        dir.path(),
    );
    assert!(fine.status.success(), "{}", text(&fine));
    assert!(dir.path().join("ok/bin/miaas").exists());

    // changed after its hash was published: refused
    std::fs::write(&file, b"#!/bin/sh\necho tampered\n").unwrap();
    let refused = sh(
        &format!("{one_liner} --prefix bad --state-dir bad-state"),
        dir.path(),
    );
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("refusing to install"),
        "{}",
        text(&refused)
    );
    assert!(!dir.path().join("bad/bin/miaas").exists());

    // an architecture it does not have: 404 naming the ones it has
    let (status, answer) =
        send(reqwest::Client::new().get(server.url("/download/miaas-linux-sparc64"))).await;
    assert_eq!(status, 404);
    let detail = answer["detail"].as_str().unwrap();
    assert!(detail.contains(arch), "{detail}");
}

#[test]
fn plain_http_on_the_network_with_auth_on_is_warned_about_naming_tls_auto() {
    let dir = tempfile::tempdir().unwrap();
    let start = |host: &str| {
        ServerProcess::start(
            &binary("miaas-server"),
            &[
                "--host",
                host,
                "--port",
                "0",
                "--database-url",
                "sqlite://cp.db",
            ],
            dir.path(),
            &[("MIAAS_AUTH", "on")],
        )
    };
    let warned = |server: &ServerProcess| {
        server
            .startup_log()
            .iter()
            .any(|line| line.contains("plain HTTP") && line.contains("--tls auto"))
    };
    let open = start("0.0.0.0");
    assert!(warned(&open), "{:?}", open.startup_log());
    open.terminate();
    let local = start("127.0.0.1");
    assert!(!warned(&local), "{:?}", local.startup_log());
}
