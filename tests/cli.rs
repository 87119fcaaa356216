//! The `relayguard` command as a user runs it: exit codes, the closing line,
//! JSON, and errors that name the file and line.

use std::path::Path;

mod common;
use common::relayguard;

#[test]
fn replay_of_one_attack_passes_with_a_closing_line() {
    let (code, out, _) = relayguard(&["replay", "corpus/attacks/nmap-01-null-sender.smtp"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.trim_end().ends_with("replay: 1 passed, 0 failed"), "{out}");
}

#[test]
fn replay_json_is_machine_readable() {
    let (code, out, _) = relayguard(&["replay", "--json", "corpus/attacks/nmap-02-foreign-sender.smtp"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(v["passed"], 1);
    assert_eq!(v["transcripts"][0]["relay_refused"], 1);
}

#[test]
fn a_wrong_expectation_fails_with_its_line() {
    let dir = std::env::temp_dir().join(format!("relayguard-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/configs/default.toml");
    let t = dir.join("wrong.smtp");
    std::fs::write(
        &t,
        format!(
            "# expects the relay to accept\n@peer 203.0.113.7\n@config {}\n@expect closed\nC: EHLO x\nS: 250\nC: MAIL FROM:<a@b.example>\nS: 250\nC: RCPT TO:<u@nmap.scanme.org>\nS: 250\n",
            config.display()
        ),
    )
    .unwrap();
    let (code, out, _) = relayguard(&["replay", t.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("line 10: expected \"250\", got \"550 5.7.1"),
        "{out}"
    );
    assert!(out.contains("replay: 0 passed, 1 failed"), "{out}");
    std::fs::write(&t, "@peer 203.0.113.7\nX: what\n").unwrap();
    let (code, out, _) = relayguard(&["replay", t.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("wrong.smtp: line 2"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_paths_and_bad_configs_are_usage_errors() {
    let (code, _, err) = relayguard(&["replay", "no/such/folder"]);
    assert_eq!(code, 2);
    assert!(err.contains("no/such/folder"), "{err}");
    let dir = std::env::temp_dir().join(format!("relayguard-cli-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "hostname = \"x\"\n[relay]\nopen = true\n").unwrap();
    let (code, _, err) = relayguard(&["replay", "--config", bad.to_str().unwrap(), "corpus/legit"]);
    assert_eq!(code, 2);
    assert!(err.contains("line 3, column 1"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn audit_mode_judges_with_the_oracle_only() {
    let (code, out, _) = relayguard(&[
        "replay",
        "--config",
        "corpus/configs/default.toml",
        "corpus/attacks/nmap-05-percent-hack-ip-literal.smtp",
    ]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn explain_names_each_step_and_exits_by_the_outcome() {
    let base = ["explain", "--config", "corpus/configs/default.toml"];
    let args = |client: &'static str, to: &'static str| {
        let mut a = base.to_vec();
        a.extend(["--client", client, "--from", "s@probe.example", "--to", to]);
        a
    };
    let (code, out, _) = relayguard(&args("203.0.113.7", "relaytest%nmap.scanme.org@example.com"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("REFUSED  550 5.7.1"), "{out}");
    assert!(out.contains("sender-specified routing"), "{out}");
    let (code, out, _) = relayguard(&args("192.168.1.9", "u@nmap.scanme.org"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("accepted -> remote u@nmap.scanme.org"), "{out}");
    let (code, _, err) = relayguard(&[
        "explain",
        "--config",
        "no-such.toml",
        "--client",
        "1.2.3.4",
        "--from",
        "<>",
        "--to",
        "a@b.example",
    ]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn lint_exit_codes() {
    let (code, out, _) = relayguard(&["lint", "corpus/configs/open-relay.toml"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("error: relay.outside_lan"), "{out}");
    let (code, out, _) = relayguard(&["lint", "corpus/configs/default.toml"]);
    assert_eq!(code, 0, "{out}");
    let dir = std::env::temp_dir().join(format!("relayguard-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[lan\nnetworks = 3\n").unwrap();
    let (code, _, err) = relayguard(&["lint", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("line 1"), "{err}");
    std::fs::write(&bad, "[lan]\nnetworks = [\"10.0.0.0/8\", \"10.1.*\"]\n").unwrap();
    let (code, out, _) = relayguard(&["lint", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("line 2, column 27"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `relayguard shrink`: a finding of an injected bug shrinks and is written
/// with its configuration; without the bug there is nothing to shrink.
#[test]
fn shrink_writes_a_smaller_failing_transcript() {
    let dir = std::env::temp_dir().join(format!("relayguard-shrink-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = "corpus/regressions/fuzz-session_script-67d5895df2b9-buggify-trust-routed.smtp";
    let out = dir.join("min.smtp");
    let (code, stdout, err) = relayguard(&[
        "shrink",
        input,
        "--buggify",
        "trust-routed",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(stdout.contains("still open relay"), "{stdout}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("@config min.toml"), "{text}");
    // Fixed code passes the shrunk session.
    let (code, stdout, _) = relayguard(&["replay", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    let (code, stdout, _) = relayguard(&["shrink", input, "--out", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}
