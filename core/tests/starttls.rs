//! STARTTLS (RFC 3207) in the server session: the discard of what was
//! pipelined after it, the reset once TLS is up, the reply codes, AUTH
//! held back until TLS, the configuration, the transcript step, and the
//! injected bug `keep-buffer-after-starttls` caught by the wire oracle.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use relayguard_core::check::buggify::{Bug, Bugs};
use relayguard_core::check::drive::Driver;
use relayguard_core::check::oracle::{Oracle, ViolationKind};
use relayguard_core::check::record::Recorder;
use relayguard_core::check::replay::{Mode, replay};
use relayguard_core::check::transcript::{Step, parse};
use relayguard_core::{Config, Policy};

const BASE: &str = r#"
hostname = "mail.example.com"
[domains]
local = ["example.com"]
[lan]
networks = ["192.168.1.0/24"]
[auth]
users = [{ name = "carol", password = "secret", relay = true }]
"#;

const TLS: &str = "[tls]\ncert = \"test-cert.pem\"\nkey = \"test-key.pem\"\n";

const OUTSIDE: &str = "203.0.113.7";

fn policy_of(text: &str, bugs: Bugs) -> Arc<Policy> {
    Arc::new(Policy::with_bugs(Config::from_toml(text).unwrap(), bugs).unwrap())
}

/// The base configuration with `[tls]`: AUTH needs TLS by default.
fn tls_policy(bugs: Bugs) -> Arc<Policy> {
    policy_of(&format!("{BASE}{TLS}"), bugs)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A driver whose session offers STARTTLS.
fn driver(policy: Arc<Policy>) -> Driver {
    let mut d = Driver::new(policy, ip(OUTSIDE));
    d.offer_tls();
    d
}

/// The reply lines sent since octet `from`.
fn lines_since(d: &Driver, from: usize) -> Vec<String> {
    String::from_utf8_lossy(&d.run.sent[from..])
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Feeds one line as its own chunk; its reply lines.
fn say(d: &mut Driver, line: &str) -> Vec<String> {
    let before = d.run.sent.len();
    d.feed(format!("{line}\r\n").as_bytes());
    lines_since(d, before)
}

fn plain(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

const INJECTION: &[u8] =
    b"EHLO client.example\r\nSTARTTLS\r\nMAIL FROM:<a@spam.example>\r\nRCPT TO:<victim@nmap.scanme.org>\r\nRSET\r\n";

/// Where the octets after the STARTTLS line begin in [`INJECTION`].
fn after_starttls() -> usize {
    let at = INJECTION.windows(10).position(|w| w == b"STARTTLS\r\n").unwrap();
    at + 10
}

#[test]
fn every_split_discards_the_same_octets() {
    let tail = (INJECTION.len() - after_starttls()) as u64;
    let mut seen = None;
    for a in 0..=INJECTION.len() {
        for b in a..=INJECTION.len() {
            let mut d = driver(tls_policy(Bugs::NONE));
            for chunk in [&INJECTION[..a], &INJECTION[a..b], &INJECTION[b..]] {
                if !chunk.is_empty() {
                    d.feed(chunk);
                }
            }
            assert_eq!(d.session.injected_octets(), tail, "split at {a}, {b}");
            assert!(d.tls_asked(), "split at {a}, {b}");
            let before = d.run.sent.len();
            assert!(d.handshake());
            assert_eq!(
                d.run.sent.len(),
                before,
                "split at {a}, {b}: a reply after the handshake"
            );
            assert!(d.session.is_tls());
            let sent = d.run.sent.clone();
            let (_, verdict) = d.finish();
            assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
            assert_eq!(verdict.stats.injected_octets, tail, "the oracle counts them too");
            // Every split gives the same bytes to the client.
            match &seen {
                None => seen = Some(sent),
                Some(s) => assert_eq!(s, &sent, "split at {a}, {b}"),
            }
        }
    }
    let text = String::from_utf8(seen.unwrap()).unwrap();
    assert!(text.ends_with("220 2.0.0 Ready to start TLS\r\n"), "{text}");
    assert!(!text.contains("2.1.0"), "an injected MAIL was answered: {text}");
}

#[test]
fn octets_in_later_chunks_before_the_handshake_are_discarded_too() {
    let mut d = driver(tls_policy(Bugs::NONE));
    say(&mut d, "EHLO client.example");
    assert_eq!(say(&mut d, "STARTTLS"), ["220 2.0.0 Ready to start TLS"]);
    assert!(say(&mut d, "MAIL FROM:<a@spam.example>").is_empty());
    assert!(say(&mut d, "QUIT").is_empty());
    assert_eq!(d.session.injected_octets(), 34);
    assert!(!d.session.is_closed());
    assert!(d.handshake());
    assert_eq!(say(&mut d, "QUIT")[0], "221 2.0.0 Bye");
}

#[test]
fn tls_resets_the_session_to_the_start() {
    // AUTH in plain text allowed here, so that there is AUTH state to drop.
    let text = format!(
        "{}{TLS}",
        BASE.replacen("[auth]\n", "[auth]\nrequire_tls = false\n", 1)
    );
    let mut d = driver(policy_of(&text, Bugs::NONE));
    let ehlo = say(&mut d, "EHLO client.example");
    assert!(ehlo.contains(&"250-STARTTLS".to_string()), "{ehlo:?}");
    assert!(ehlo.iter().any(|l| l.contains("AUTH PLAIN")), "{ehlo:?}");
    assert_eq!(
        say(&mut d, &format!("AUTH PLAIN {}", plain("carol", "secret")))[0],
        "235 2.7.0 Authentication successful"
    );
    assert_eq!(d.session.user(), Some("carol"));
    say(&mut d, "STARTTLS");
    assert!(d.handshake());
    assert!(d.session.is_tls());
    assert_eq!(d.session.user(), None, "AUTH state survived STARTTLS");
    // No HELO/EHLO any more.
    assert_eq!(
        say(&mut d, "MAIL FROM:<a@example.org>")[0],
        "503 5.5.1 Error: send HELO/EHLO first"
    );
    let ehlo = say(&mut d, "EHLO client.example");
    assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
    assert!(ehlo.iter().any(|l| l.contains("AUTH PLAIN")), "{ehlo:?}");
    // The relay right came from the AUTH before TLS: gone until AUTH again.
    say(&mut d, "MAIL FROM:<a@example.org>");
    assert_eq!(&say(&mut d, "RCPT TO:<x@nmap.scanme.org>")[0][..1], "5");
    let (_, verdict) = d.finish();
    assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
}

#[test]
fn an_auth_header_user_is_forgotten_at_tls_too() {
    let mut d = driver(tls_policy(Bugs::NONE));
    d.authenticate("carol");
    say(&mut d, "EHLO client.example");
    say(&mut d, "STARTTLS");
    d.handshake();
    assert_eq!(d.session.user(), None);
}

#[test]
fn reply_codes() {
    // Not offered by the driver: 502, even with [tls] in the configuration.
    let mut d = Driver::new(tls_policy(Bugs::NONE), ip(OUTSIDE));
    let ehlo = say(&mut d, "EHLO client.example");
    assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
    assert_eq!(
        say(&mut d, "STARTTLS")[0],
        "502 5.5.1 Error: STARTTLS not available"
    );

    let mut d = driver(tls_policy(Bugs::NONE));
    assert_eq!(say(&mut d, "STARTTLS")[0], "503 5.5.1 Error: send EHLO first");
    say(&mut d, "HELO client.example");
    assert_eq!(say(&mut d, "STARTTLS")[0], "503 5.5.1 Error: send EHLO first");
    say(&mut d, "EHLO client.example");
    assert_eq!(&say(&mut d, "STARTTLS now")[0][..9], "501 5.5.4");
    say(&mut d, "MAIL FROM:<a@example.org>");
    assert_eq!(
        say(&mut d, "STARTTLS")[0],
        "503 5.5.1 Error: STARTTLS not allowed during a mail transaction"
    );
    say(&mut d, "RSET");
    assert_eq!(say(&mut d, "STARTTLS")[0], "220 2.0.0 Ready to start TLS");
    assert!(d.handshake());
    assert!(!d.handshake(), "a second handshake nobody asked for");
    say(&mut d, "EHLO client.example");
    assert_eq!(say(&mut d, "STARTTLS")[0], "503 5.5.1 Error: TLS already active");
    assert!(!d.tls_asked());
}

#[test]
fn require_tls_holds_auth_back_until_tls() {
    let mut d = driver(tls_policy(Bugs::NONE));
    let ehlo = say(&mut d, "EHLO client.example");
    assert!(!ehlo.iter().any(|l| l.contains("AUTH")), "{ehlo:?}");
    assert_eq!(
        say(&mut d, &format!("AUTH PLAIN {}", plain("carol", "secret")))[0],
        "538 5.7.11 Encryption required for requested authentication mechanism"
    );
    assert_eq!(d.session.user(), None);
    say(&mut d, "STARTTLS");
    d.handshake();
    let ehlo = say(&mut d, "EHLO client.example");
    assert!(ehlo.contains(&"250-AUTH PLAIN LOGIN".to_string()), "{ehlo:?}");
    assert_eq!(
        &say(&mut d, &format!("AUTH PLAIN {}", plain("carol", "secret")))[0][..3],
        "235"
    );
    say(&mut d, "MAIL FROM:<carol@example.com>");
    assert_eq!(&say(&mut d, "RCPT TO:<friend@nmap.scanme.org>")[0][..3], "250");
}

#[test]
fn require_tls_without_a_certificate_refuses_auth_everywhere() {
    let text = BASE.replacen("[auth]\n", "[auth]\nrequire_tls = true\n", 1);
    let c = Config::from_toml(&text).unwrap();
    assert!(c.auth_requires_tls());
    let mut d = Driver::new(policy_of(&text, Bugs::NONE), ip(OUTSIDE));
    say(&mut d, "EHLO client.example");
    assert_eq!(&say(&mut d, "AUTH LOGIN")[0][..10], "538 5.7.11");
}

#[test]
fn configuration_of_tls() {
    let c = Config::from_toml(&format!("{BASE}{TLS}")).unwrap();
    assert!(c.auth_requires_tls(), "default on with a certificate");
    assert!(
        !Config::from_toml(BASE).unwrap().auth_requires_tls(),
        "off without one"
    );
    let off = format!(
        "{}{TLS}",
        BASE.replacen("[auth]\n", "[auth]\nrequire_tls = false\n", 1)
    );
    assert!(!Config::from_toml(&off).unwrap().auth_requires_tls());
    let (cert, key) = c.tls.resolve(std::path::Path::new("etc/relay")).unwrap();
    assert_eq!(cert, std::path::Path::new("etc/relay/test-cert.pem"));
    assert_eq!(key, std::path::Path::new("etc/relay/test-key.pem"));

    let e = Config::from_toml("hostname = \"a.example\"\n[tls]\ncert = \"c.pem\"\n").unwrap_err();
    assert_eq!((e.line, e.column), (Some(3), Some(1)), "{e}");
    assert!(e.message.contains("tls.key"), "{e}");
    let e = Config::from_toml("[tls]\nkey = \"k.pem\"\n").unwrap_err();
    assert_eq!((e.line, e.column), (Some(2), Some(1)), "{e}");
    let e = Config::from_toml("[tls]\ncert = \"c.pem\"\nkey = \" \"\n").unwrap_err();
    assert_eq!((e.line, e.column), (Some(3), Some(7)), "{e}");
    let e = Config::from_toml("[tls]\n  certificate = \"c.pem\"\n").unwrap_err();
    assert_eq!((e.line, e.column), (Some(2), Some(3)), "{e}");
    let e = Config::from_toml("[auth]\nrequire_tls = \"yes\"\n").unwrap_err();
    assert_eq!(e.line, Some(2), "{e}");
}

/// The injected bug runs the octets pipelined after STARTTLS once TLS is
/// up; the oracle, which pairs replies with client lines itself, sees
/// replies that answer nothing sent over TLS.
#[test]
fn keep_buffer_after_starttls_is_caught_by_the_oracle() {
    for (bugs, caught) in [
        (Bugs::NONE, false),
        (Bugs::NONE.with(Bug::KeepBufferAfterStarttls), true),
    ] {
        let mut d = driver(tls_policy(bugs));
        d.feed(b"EHLO client.example\r\nSTARTTLS\r\nEHLO evil.example\r\nMAIL FROM:<a@spam.example>\r\n");
        let before = d.run.sent.len();
        d.handshake();
        let after = lines_since(&d, before);
        assert_eq!(!after.is_empty(), caught, "{after:?}");
        say(&mut d, "QUIT");
        let (_, verdict) = d.finish();
        let found = verdict
            .violations
            .iter()
            .any(|v| v.kind == ViolationKind::InjectedCommand);
        assert_eq!(found, caught, "{bugs:?}: {:?}", verdict.violations);
    }
}

/// The oracle alone, fed a server that answers the injected commands
/// before the handshake (it never stopped reading in plain text).
#[test]
fn the_oracle_flags_a_reply_to_injected_octets_before_the_handshake() {
    let config = Config::from_toml(BASE).unwrap();
    let mut o = Oracle::new(&config, ip(OUTSIDE));
    o.server_bytes(b"220 mail.example.com ESMTP\r\n");
    o.client_bytes(b"EHLO c.example\r\nSTARTTLS\r\nMAIL FROM:<a@spam.example>\r\n");
    o.server_bytes(b"250 mail.example.com\r\n220 2.0.0 go ahead\r\n");
    assert!(o.violations().is_empty());
    o.server_bytes(b"250 2.1.0 Ok\r\n");
    assert_eq!(o.violations().len(), 1, "{:?}", o.violations());
    assert_eq!(o.violations()[0].kind, ViolationKind::InjectedCommand);

    // A 421 may come unasked (a timeout): not a violation.
    let mut o = Oracle::new(&config, ip(OUTSIDE));
    o.server_bytes(b"220 mail.example.com ESMTP\r\n");
    o.client_bytes(b"EHLO c.example\r\nSTARTTLS\r\n");
    o.server_bytes(b"250 mail.example.com\r\n220 2.0.0 go ahead\r\n");
    o.tls_established();
    o.server_bytes(b"421 4.4.2 Error: timeout exceeded\r\n");
    assert!(o.finish().violations.is_empty());
}

const TRANSCRIPT: &str = "\
# STARTTLS with a command pipelined after it
@peer 203.0.113.7
@config tls.toml
@expect closed
C: EHLO client.example
S: 250
C: STARTTLS
C: MAIL FROM:<a@spam.example>
S: 220 2.0.0
T: handshake
C: MAIL FROM:<a@spam.example>
S: 503 5.5.1
C: QUIT
S: 221
";

#[test]
fn the_transcript_step_parses_writes_and_replays() {
    let t = parse(TRANSCRIPT).unwrap();
    assert_eq!(
        t.steps.iter().filter(|s| matches!(s, Step::Tls { .. })).count(),
        1
    );
    assert!(matches!(t.steps[5], Step::Tls { line: 10 }));
    let again = parse(&t.to_text()).unwrap();
    assert_eq!(again.to_text(), t.to_text());
    let e = parse("T: renegotiate\n").unwrap_err();
    assert_eq!(e.line, 1);
    assert!(e.message.contains("T: handshake"), "{e}");

    let o = replay(&t, tls_policy(Bugs::NONE), Mode::Strict);
    assert!(o.passed(), "{:?}", o.first_failure());
    let o = replay(
        &t,
        tls_policy(Bugs::NONE.with(Bug::KeepBufferAfterStarttls)),
        Mode::Strict,
    );
    assert!(!o.passed(), "the bug passed");
    assert!(
        o.violations
            .iter()
            .any(|v| v.kind == ViolationKind::InjectedCommand),
        "{o:?}"
    );
    // Without [tls] the replay offers no STARTTLS: 502, and the handshake
    // step fails at its line.
    let o = replay(&t, policy_of(BASE, Bugs::NONE), Mode::Strict);
    assert!(o.mismatches.iter().any(|m| m.line == 10), "{:?}", o.mismatches);
}

#[test]
fn a_recorded_handshake_replays() {
    let policy = tls_policy(Bugs::NONE);
    let peer = ip(OUTSIDE);
    let mut d = driver(policy.clone());
    let mut rec = Recorder::new(peer, None);
    rec.server(&d.run.sent);
    for chunk in [
        &b"EHLO client.example\r\n"[..],
        b"STARTTLS\r\n",
        b"EHLO client.example\r\n",
        b"QUIT\r\n",
    ] {
        let before = d.run.sent.len();
        rec.client(chunk);
        d.feed(chunk);
        rec.server(&d.run.sent[before..]);
        if d.handshake() {
            rec.tls_established();
        }
    }
    let text = rec.finish().to_text();
    assert!(
        text.contains("S: 220 2.0.0 Ready to start TLS\nT: handshake\nC: EHLO"),
        "{text}"
    );
    let o = replay(&parse(&text).unwrap(), policy, Mode::Strict);
    assert!(o.passed(), "{:?}", o.first_failure());
}

/// Octets that trickle in while the handshake is awaited do not move the
/// deadline: the handshake must be done within the command timeout of the
/// STARTTLS line.
#[test]
fn the_deadline_does_not_move_while_the_handshake_is_awaited() {
    use relayguard_core::{Output, Peer, Session};
    use std::time::Duration;
    let mut s = Session::new(tls_policy(Bugs::NONE), Peer::direct(ip(OUTSIDE)), Duration::ZERO);
    s.offer_tls();
    s.handle_input(Duration::from_secs(1), b"EHLO c.example\r\nSTARTTLS\r\n");
    while s.poll_output().is_some() {}
    let deadline = s.poll_timeout().unwrap();
    assert_eq!(deadline, Duration::from_secs(1 + 300));
    for t in 2..10 {
        s.handle_input(Duration::from_secs(t * 30), b"X");
        assert_eq!(s.poll_timeout(), Some(deadline));
    }
    s.handle_timeout(deadline);
    let mut closed = false;
    while let Some(o) = s.poll_output() {
        closed |= o == Output::Close;
    }
    assert!(closed && s.is_closed());
    assert_eq!(s.injected_octets(), 8);
}

/// The shrinker keeps the handshake between the lines it keeps: the
/// injection still shows, cut to the STARTTLS line and one injected line.
#[test]
fn a_shrunk_injection_keeps_its_handshake() {
    let policy = tls_policy(Bugs::NONE.with(Bug::KeepBufferAfterStarttls));
    let t = parse(TRANSCRIPT).unwrap();
    let s = relayguard_core::check::shrink(&t, policy.clone()).expect("the bug shows");
    assert_eq!(s.kind, ViolationKind::InjectedCommand);
    assert!(s.lines_after < s.lines_before, "{s:?}");
    let steps = &s.transcript.steps;
    assert!(
        steps.iter().any(|x| matches!(x, Step::Tls { .. })),
        "{}",
        s.transcript.to_text()
    );
    let o = replay(&s.transcript, policy, Mode::Audit);
    assert!(
        o.violations
            .iter()
            .any(|v| v.kind == ViolationKind::InjectedCommand),
        "{o:?}"
    );
    let o = replay(&s.transcript, tls_policy(Bugs::NONE), Mode::Audit);
    assert!(o.violations.is_empty(), "{o:?}");
}
