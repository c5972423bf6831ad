//! The `miaas-server` binary answers `--version`. (Its presence here also makes
//! `cargo test` build the binary that the workspace's end-to-end tests run.)

use std::process::Command;

#[test]
fn version_flag_prints_the_package_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_miaas-server"))
        .arg("--version")
        .output()
        .expect("run miaas-server");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(env!("CARGO_PKG_VERSION")), "{stdout}");
}
