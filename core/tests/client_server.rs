//! (d) The client session talking to the server session in memory delivers
//! any body byte-exact (after the client's CRLF normalization), lines
//! starting with dots included, whatever the transport's chunking, with
//! DATA or with BDAT.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use relayguard_core::Config;
use relayguard_core::Policy;
use relayguard_core::client::{self, Client, Job, MessageResult, RcptResult};
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
    let policy = Arc::new(Policy::new(Config::from_toml(CONFIG).unwrap()).unwrap());
    let now = Duration::ZERO;
    let ip: IpAddr = peer.parse().unwrap();
    let mut server = Session::new(policy, Peer::direct(ip), now);
    let mut client = Client::new(job, now);
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
                Output::Close | Output::StartTls => {}
                Output::Body(_) | Output::DropBody => {}
            }
        }
        while let Some(o) = client.poll_output() {
            match o {
                client::Output::Send(b) => to_server.extend_from_slice(&b),
                client::Output::Done(outcome) => return (outcome, messages),
            }
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
        chunking: false,
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
        chunking in any::<bool>(),
    ) {
        let body: Vec<u8> = parts.concat();
        let mut j = job(body.clone(), &["alice@example.com", "friend@elsewhere.example"]);
        // With BDAT (the server offers CHUNKING) or DATA: the same message.
        j.chunking = chunking;
        let (outcome, messages) = talk(j, "192.168.1.7", mtu);
        let verb = if chunking { "BDAT" } else { "DATA" };
        prop_assert!(outcome.transcript.iter().any(|(c, _)| c.starts_with(verb.as_bytes())));
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
fn a_body_larger_than_a_chunk_goes_in_several_bdat_chunks() {
    let line = b"0123456789 a line of a body larger than one BDAT chunk\r\n";
    let mut body = Vec::new();
    while body.len() < 2 * client::BDAT_CHUNK + 100 {
        body.extend_from_slice(line);
    }
    let mut j = job(body.clone(), &["alice@example.com"]);
    j.chunking = true;
    let policy_limit_ok = body.len() < 10 * 1024 * 1024;
    assert!(policy_limit_ok);
    let (outcome, messages) = talk(j, "203.0.113.7", 4096);
    assert!(
        matches!(outcome.message, MessageResult::Accepted(_)),
        "{:?}",
        outcome.message
    );
    let chunks: Vec<String> = outcome
        .transcript
        .iter()
        .filter(|(c, _)| c.starts_with(b"BDAT"))
        .map(|(c, _)| String::from_utf8_lossy(&c[..c.iter().position(|&b| b == b'\r').unwrap()]).into_owned())
        .collect();
    assert_eq!(chunks.len(), 3, "{chunks:?}");
    assert!(
        chunks[2].ends_with(" LAST") && !chunks[0].ends_with(" LAST"),
        "{chunks:?}"
    );
    assert_eq!(messages[0].body, body);
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
