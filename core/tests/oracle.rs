//! The wire oracle on real sessions: quiet on a correct core, loud on a
//! broken one. Each injected bug here is switched on inside the real code.

use std::net::IpAddr;
use std::sync::Arc;

use proptest::prelude::*;
use relayguard_core::Config;
use relayguard_core::Policy;
use relayguard_core::check::buggify::{Bug, Bugs};
use relayguard_core::check::drive::run_checked;
use relayguard_core::check::oracle::ViolationKind;

/// The shared fixture, so that this file keeps no copy of its own.
const CONFIG: &str = include_str!("../../corpus/configs/backup-mx.toml");

fn policy(bugs: Bugs) -> Arc<Policy> {
    let c = Config::from_toml(CONFIG).unwrap();
    Arc::new(Policy::with_bugs(c, bugs).unwrap())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Relay tricks: the parts an attacker combines.
fn rcpt() -> impl Strategy<Value = String> {
    let local = prop::sample::select(vec![
        "relaytest",
        "alice",
        "bob",
        "postmaster",
        "Alice",
        "\"relaytest\"",
        "\"a b\"",
    ]);
    let foreign = prop::sample::select(vec![
        "nmap.scanme.org",
        "NMAP.scanme.org.",
        "bücher.example",
        "xn--bcher-kva.example",
    ]);
    let target = prop::sample::select(vec![
        "example.com",
        "EXAMPLE.COM",
        "example.com.",
        "[198.51.100.25]",
        "mail.example.com",
        "backup.example.org",
        "nmap.scanme.org",
        "[203.0.113.9]",
    ]);
    (local, foreign, target, 0..8u8).prop_map(|(l, f, t, form)| match form {
        0 => format!("<{l}@{t}>"),
        1 => format!("<{l}%{f}@{t}>"),
        2 => format!("<\"{l}@{f}\"@{t}>"),
        3 => format!("<{f}!{l}@{t}>"),
        4 => format!("<@{t}:{l}@{f}>"),
        5 => format!("<\"{l}%{f}\">"),
        6 => format!("<{l}@{f}@{t}>"),
        _ => format!("<{l}@{f}>"),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// A correct core gives the oracle nothing to report, whatever the tricks.
    #[test]
    fn no_violation_on_the_correct_core(
        rcpts in prop::collection::vec(rcpt(), 1..6),
        from in prop::sample::select(vec!["<>", "<antispam@[198.51.100.25]>", "<alice@example.com>", "<s@nmap.scanme.org>"]),
        peer in prop::sample::select(vec!["203.0.113.7", "192.168.1.20", "198.51.100.25"]),
        utf8 in any::<bool>(),
    ) {
        let mut text = format!("EHLO probe.example\r\nMAIL FROM:{from}{}\r\n", if utf8 { " SMTPUTF8" } else { "" });
        for r in &rcpts {
            text.push_str(&format!("RCPT TO:{r}\r\n"));
        }
        text.push_str("DATA\r\n");
        let (_, v) = run_checked(policy(Bugs::NONE), ip(peer), &[text.as_bytes(), b"Subject: t\r\n\r\nhi\r\n.\r\nQUIT\r\n"]);
        prop_assert!(v.violations.is_empty(), "{:?}", v.violations);
    }
}

#[test]
fn lf_ends_data_is_caught_as_smuggling() {
    let first: &[u8] = b"EHLO x\r\nMAIL FROM:<s@x.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n";
    let body: &[u8] = b"one\n.\nMAIL FROM:<admin@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nspoofed\r\n.\r\nQUIT\r\n";
    let (_, good) = run_checked(policy(Bugs::NONE), ip("203.0.113.7"), &[first, body]);
    assert!(good.violations.is_empty(), "{:?}", good.violations);
    let (run, bad) = run_checked(
        policy(Bugs::NONE.with(Bug::LfEndsData)),
        ip("203.0.113.7"),
        &[first, body],
    );
    assert!(!run.messages.is_empty(), "the bug should let a message through");
    assert!(
        bad.violations
            .iter()
            .any(|v| v.kind == ViolationKind::SmuggledMessage),
        "{:?}",
        bad.violations
    );
}
