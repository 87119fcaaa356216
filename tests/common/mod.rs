//! What the command-line tests share: running the built binary from the
//! checkout, as a user would, and stopping a server it started.

// Each test binary uses the helpers it needs.
#![allow(dead_code)]

use std::process::{Child, Command};

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

/// A server that is killed if the test ends without stopping it (a failed
/// assertion): it would otherwise outlive the test and keep `cargo test`
/// waiting on the output they share.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}
