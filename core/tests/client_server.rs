//! (d) The client session talking to the server session in memory delivers
//! any body byte-exact (after the client's CRLF normalization), lines
//! starting with dots included, whatever the transport's chunking.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use relayguard_core::Config;
use relayguard_core::Policy;
use relayguard_core::client::{self, Client, Failure, Job, MessageResult, RcptResult, TlsMode};
use relayguard_core::{Message, Output, Peer, Session};

const CONFIG: &str = r#"
hostname = "mail.example.com"
[domains]
local = ["example.com"]
mailboxes = ["alice@example.com", "bob@example.com"]
[lan]
networks = ["192.168.1.0/24"]
[auth]
users = [{ name = "carol", password = "secret", relay = true }]
"#;

/// Runs a client against a server, moving at most `mtu` octets at a time.
fn talk(job: Job, peer: &str, mtu: usize) -> (client::Outcome, Vec<Message>) {
    let (outcome, messages, _) = talk_tls(job, peer, mtu, Tls::default());
    (outcome, messages)
}

/// Who can do TLS in [`talk_tls`]: the server's configuration has `[tls]`
/// and its driver offers it; the client's driver can do it.
#[derive(Clone, Copy, Default)]
struct Tls {
    server: bool,
    client: bool,
}

const TLS: &str = "[tls]\ncert = \"test-cert.pem\"\nkey = \"test-key.pem\"\n";

/// [`talk`], with STARTTLS where `tls` says; the in-memory handshake is
/// done once both sides have asked for it and nothing is in flight. Also
/// returns the handshakes done.
fn talk_tls(job: Job, peer: &str, mtu: usize, tls: Tls) -> (client::Outcome, Vec<Message>, usize) {
    let config = if tls.server {
        format!("{CONFIG}{TLS}")
    } else {
        CONFIG.to_string()
    };
    let policy = Arc::new(Policy::new(Config::from_toml(&config).unwrap()).unwrap());
    let now = Duration::ZERO;
    let ip: IpAddr = peer.parse().unwrap();
    let mut server = Session::new(policy, Peer::direct(ip), now);
    let mut client = Client::new(job, now);
    if tls.server {
        server.offer_tls();
    }
    if tls.client {
        client.enable_tls();
    }
    let (mut server_asked, mut client_asked, mut handshakes) = (false, false, 0);
    let mut messages = Vec::new();
    let mut to_client: Vec<u8> = Vec::new();
    let mut to_server: Vec<u8> = Vec::new();
    for _ in 0..100_000 {
        while let Some(o) = server.poll_output() {
            match o {
                Output::Send(b) => to_client.extend_from_slice(&b),
                Output::Message(m) => {
                    messages.push(*m);
                    server.message_stored(now, Ok("id".into()));
                }
                Output::Close => {}
                Output::StartTls => server_asked = true,
                Output::Body(_) | Output::DropBody => {}
            }
        }
        while let Some(o) = client.poll_output() {
            match o {
                client::Output::Send(b) => to_server.extend_from_slice(&b),
                client::Output::StartTls => client_asked = true,
                client::Output::Done(outcome) => return (outcome, messages, handshakes),
            }
        }
        if server_asked && client_asked && to_client.is_empty() && to_server.is_empty() {
            (server_asked, client_asked) = (false, false);
            handshakes += 1;
            server.tls_established(now);
            client.tls_established(now);
            assert!(server.is_tls() && client.is_tls());
            continue;
        }
        if to_client.is_empty() && to_server.is_empty() {
            client.handle_close(now);
            continue;
        }
        if !to_client.is_empty() {
            let n = to_client.len().min(mtu);
            client.handle_input(now, &to_client[..n]);
            to_client.drain(..n);
        }
        if !to_server.is_empty() {
            // A real client waits for the 354 before the body; the client
            // session only produces it after the 354, so whole writes are
            // fed as they come, cut at the MTU.
            let n = to_server.len().min(mtu);
            server.handle_input(now, &to_server[..n]);
            to_server.drain(..n);
        }
    }
    panic!("no outcome");
}

/// What the client promises to send: lone CR or LF as CRLF, a final CRLF.
fn normalized(body: &[u8]) -> Vec<u8> {
    let wire = client::data_bytes(body);
    // Unstuff and drop the final ".\r\n".
    let wire = &wire[..wire.len() - 3];
    let mut out = Vec::new();
    for line in wire.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    out
}

fn job(body: Vec<u8>, rcpts: &[&str]) -> Job {
    Job {
        helo: "pc.lan".into(),
        auth: None,
        mail_from: "pc@lan.example".into(),
        rcpt_to: rcpts.iter().map(|r| r.to_string()).collect(),
        body,
        timeout: Duration::from_secs(30),
        tls: TlsMode::Opportunistic,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn any_body_arrives_byte_exact(
        parts in prop::collection::vec(prop_oneof![
            Just(b"\r\n".to_vec()), Just(b".".to_vec()), Just(b"..".to_vec()), Just(b"\n".to_vec()),
            Just(b"\r".to_vec()), Just(b"\r\n.\r\n".to_vec()), Just(b"\n.\n".to_vec()),
            prop::collection::vec(1u8..=255, 0..40),
        ], 0..40),
        mtu in prop_oneof![Just(1usize), 2usize..64, Just(65536)],
    ) {
        let body: Vec<u8> = parts.concat();
        let (outcome, messages) = talk(job(body.clone(), &["alice@example.com", "friend@elsewhere.example"]), "192.168.1.7", mtu);
        prop_assert!(matches!(outcome.message, MessageResult::Accepted(_)), "{:?}", outcome.message);
        prop_assert_eq!(messages.len(), 1);
        prop_assert_eq!(&messages[0].body, &normalized(&body));
        prop_assert_eq!(messages[0].recipients.len(), 2);
    }
}

#[test]
fn an_outsider_client_gets_the_relay_refusal_per_recipient() {
    let (outcome, messages) = talk(
        job(b"hi\r\n".to_vec(), &["alice@example.com", "u@nmap.scanme.org"]),
        "203.0.113.7",
        7,
    );
    assert!(matches!(outcome.recipients[0].1, RcptResult::Accepted(_)));
    let RcptResult::Permanent(r) = &outcome.recipients[1].1 else {
        panic!("{:?}", outcome.recipients)
    };
    assert_eq!(r.code, 550);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].recipients.len(), 1);
}

#[test]
fn authenticated_client_relays() {
    let mut j = job(b"hi\r\n".to_vec(), &["u@nmap.scanme.org"]);
    j.auth = Some(("carol".into(), "secret".into()));
    let (outcome, messages) = talk(j, "203.0.113.7", 1000);
    assert!(
        matches!(outcome.message, MessageResult::Accepted(_)),
        "{:?}",
        outcome
    );
    assert_eq!(messages[0].user.as_deref(), Some("carol"));
}

/// carol's client starts TLS (the server holds AUTH back until then, as
/// `[tls]` makes `auth.require_tls` the default), says EHLO again,
/// authenticates over TLS and relays; at any MTU.
#[test]
fn a_client_starts_tls_then_authenticates_and_relays() {
    for mtu in [1, 7, 1000] {
        let mut j = job(b"hi\r\n".to_vec(), &["u@nmap.scanme.org"]);
        j.auth = Some(("carol".into(), "secret".into()));
        j.tls = TlsMode::Required;
        let both = Tls {
            server: true,
            client: true,
        };
        let (outcome, messages, handshakes) = talk_tls(j.clone(), "203.0.113.7", mtu, both);
        assert!(
            matches!(outcome.message, MessageResult::Accepted(_)),
            "{outcome:?}"
        );
        assert_eq!(handshakes, 1);
        assert_eq!(messages[0].user.as_deref(), Some("carol"));
        let sent: Vec<String> = outcome
            .transcript
            .iter()
            .map(|(c, _)| String::from_utf8_lossy(c).into_owned())
            .collect();
        assert_eq!(sent[..3], ["EHLO pc.lan\r\n", "STARTTLS\r\n", "EHLO pc.lan\r\n"]);
        // Without TLS on the client's side the server does not offer AUTH.
        let server_only = Tls {
            server: true,
            client: false,
        };
        j.tls = TlsMode::Opportunistic;
        let (outcome, messages, handshakes) = talk_tls(j, "203.0.113.7", mtu, server_only);
        assert_eq!(handshakes, 0);
        assert!(messages.is_empty());
        assert_eq!(outcome.message, MessageResult::NotSent(Failure::AuthNotOffered));
    }
}

/// A job that requires TLS fails for now, before MAIL, when the server
/// offers no STARTTLS; an opportunistic one goes on in plain text.
#[test]
fn required_tls_without_an_offer_fails_temporarily() {
    let client_only = Tls {
        server: false,
        client: true,
    };
    let mut j = job(b"hi\r\n".to_vec(), &["alice@example.com"]);
    j.tls = TlsMode::Required;
    let (outcome, messages, _) = talk_tls(j.clone(), "203.0.113.7", 100, client_only);
    assert!(messages.is_empty());
    let MessageResult::NotSent(Failure::TlsUnavailable(why)) = &outcome.message else {
        panic!("{:?}", outcome.message)
    };
    assert!(why.contains("does not offer STARTTLS"), "{why}");
    assert!(!outcome.transcript.iter().any(|(c, _)| c.starts_with(b"MAIL")));
    j.tls = TlsMode::Opportunistic;
    let (outcome, messages, _) = talk_tls(j, "203.0.113.7", 100, client_only);
    assert!(
        matches!(outcome.message, MessageResult::Accepted(_)),
        "{outcome:?}"
    );
    assert_eq!(messages.len(), 1);
}
