//! What each crate links: the agent builds `miaas-core` without its `server` feature,
//! so none of the storage, crypto or template crates end up on a node.

use std::path::Path;
use std::process::Command;

/// Crates only the control plane needs; the agent must link none of them.
const SERVER_ONLY: [&str; 5] = [
    "sqlx",
    "argon2",
    "jsonwebtoken",
    "minijinja",
    "chacha20poly1305",
];

/// The crates `package` links (normal dependencies, features resolved for it alone,
/// as `cargo build -p package` would), one `name vX.Y.Z` per line.
fn linked_crates(package: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let output = Command::new(cargo)
        .args(["tree", "-p", package, "-e", "normal", "--prefix", "none"])
        .arg("--offline")
        .current_dir(workspace)
        .output()
        .expect("run cargo tree");
    assert!(
        output.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn names(tree: &str) -> Vec<&str> {
    tree.lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect()
}

#[test]
fn the_agent_links_none_of_the_server_crates() {
    let tree = linked_crates("miaas-agent");
    let names = names(&tree);
    assert!(names.contains(&"miaas-core"), "{tree}");
    let linked: Vec<&str> = SERVER_ONLY
        .into_iter()
        .filter(|krate| names.contains(krate))
        .collect();
    assert!(
        linked.is_empty(),
        "miaas-agent links {linked:?}: it must build miaas-core without the `server` feature"
    );
}

#[test]
fn the_server_still_links_them() {
    // The check above means something only if `cargo tree` would show them.
    let tree = linked_crates("miaas-server");
    let names = names(&tree);
    for krate in SERVER_ONLY {
        assert!(names.contains(&krate), "{krate} missing from:\n{tree}");
    }
}
