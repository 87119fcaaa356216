//! What the command-line tests share: running the built binary from the
//! checkout, as a user would.

use std::process::Command;

/// Runs `relayguard ARGS` in the repository; returns the exit code, stdout
/// and stderr.
pub fn relayguard(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_relayguard"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
