//! The `miaas` binary: version and usage errors. (Its presence here also makes
//! `cargo test` build the binary that the workspace's end-to-end tests run.)

use std::process::Command;

#[test]
fn version_subcommand_and_flag_print_the_package_version() {
    for args in [vec!["version"], vec!["--version"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_miaas"))
            .args(&args)
            .output()
            .expect("run miaas");
        assert!(out.status.success(), "{args:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(env!("CARGO_PKG_VERSION")), "{stdout}");
    }
}

#[test]
fn an_unknown_subcommand_is_a_usage_error_with_exit_code_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_miaas"))
        .arg("frobnicate")
        .output()
        .expect("run miaas");
    assert_eq!(out.status.code(), Some(2));
}
