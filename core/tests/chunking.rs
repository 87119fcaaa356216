//! BDAT (RFC 3030 CHUNKING) in the server session: chunks in any split,
//! the smuggling rule over the joined chunks, the size limit before any
//! octet is kept, refused chunks skipped rather than parsed, streaming, and
//! DATA's deadline. The wire oracle watches every driven session.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use relayguard_core::check::buggify::{Bug, Bugs};
use relayguard_core::check::drive::{Driver, Run};
use relayguard_core::check::oracle::{Verdict, ViolationKind};
use relayguard_core::{BODY_PIECE, Config, Output, Peer, Policy, Session};

mod common;
use common::{Seen, drain};

const CONFIG: &str = r#"
hostname = "mail.example.com"
[domains]
local = ["example.com"]
mailboxes = ["alice@example.com", "bob@example.com"]
[lan]
networks = ["192.168.1.0/24"]
[limits]
max_message_size = 4096
max_errors = 50
command_timeout_secs = 10
data_timeout_secs = 30
min_data_rate = 500
session_timeout_secs = 600
"#;

const LAN: &str = "192.168.1.10";
const OUTSIDE: &str = "203.0.113.7";

fn policy(bugs: Bugs) -> Arc<Policy> {
    Arc::new(Policy::with_bugs(Config::from_toml(CONFIG).unwrap(), bugs).unwrap())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Drives a session from `from`, each input one `handle_input` call.
fn drive(bugs: Bugs, from: &str, inputs: &[&[u8]]) -> (Run, Verdict) {
    let mut d = Driver::new(policy(bugs), ip(from));
    for i in inputs {
        d.feed(i);
    }
    d.finish()
}

/// The reply lines after the greeting and the EHLO reply.
fn replies(r: &Run) -> Vec<String> {
    String::from_utf8_lossy(&r.sent)
        .split("\r\n")
        .filter(|l| !l.is_empty() && l.as_bytes().get(3) != Some(&b'-'))
        .skip(2)
        .map(str::to_string)
        .collect()
}

fn starts(lines: &[String], prefixes: &[&str]) {
    assert_eq!(lines.len(), prefixes.len(), "{lines:?}");
    for (l, p) in lines.iter().zip(prefixes) {
        assert!(l.starts_with(p), "{l:?} is not {p:?} in {lines:?}");
    }
}

const ENVELOPE: &[u8] = b"EHLO c.example.org\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.com>\r\n";

/// Three chunks, the last with `LAST`, and QUIT: all of it one stream.
fn chunked_stream() -> Vec<u8> {
    let mut s = ENVELOPE.to_vec();
    s.extend_from_slice(b"BDAT 13\r\nSubject: hi\r\n");
    s.extend_from_slice(b"BDAT 7\r\n\r\nbody ");
    s.extend_from_slice(b"BDAT 8 LAST\r\ntext\r\n\r\n");
    s.extend_from_slice(b"QUIT\r\n");
    s
}

#[test]
fn ehlo_offers_chunking() {
    let (r, _) = drive(Bugs::NONE, OUTSIDE, &[b"EHLO c.example.org\r\n"]);
    let text = String::from_utf8_lossy(&r.sent);
    assert!(text.contains("250-CHUNKING\r\n"), "{text}");
}

#[test]
fn a_server_that_refuses_chunking_still_skips_the_octets() {
    let mut s = start(false);
    s.refuse_chunking();
    let mut seen = Seen::default();
    let mut input = ENVELOPE.to_vec();
    input.extend_from_slice(b"BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n");
    s.handle_input(Duration::ZERO, &input);
    drain(&mut s, Duration::ZERO, &mut seen);
    assert!(!seen.wire.contains("250-CHUNKING"), "{}", seen.wire);
    assert!(
        seen.wire
            .ends_with("502 5.5.1 Error: CHUNKING not offered\r\n250 2.0.0 Ok\r\n"),
        "{}",
        seen.wire
    );
    assert!(!seen.closed);
}

#[test]
fn a_chunked_message_is_delivered_whole() {
    let (r, v) = drive(Bugs::NONE, OUTSIDE, &[&chunked_stream()]);
    starts(
        &replies(&r),
        &[
            "250 2.1.0",
            "250 2.1.5",
            "250 2.0.0 13 octets received",
            "250 2.0.0 7 octets received",
            "250 2.0.0 Ok: queued as M1",
            "221",
        ],
    );
    assert_eq!(r.messages.len(), 1);
    assert_eq!(r.messages[0].body, b"Subject: hi\r\n\r\nbody text\r\n\r\n");
    assert!(v.violations.is_empty(), "{:?}", v.violations);
    assert_eq!(v.stats.messages_accepted, 1);
}

#[test]
fn every_split_gives_the_same_outputs() {
    let stream = chunked_stream();
    let whole = drive(Bugs::NONE, OUTSIDE, &[&stream]);
    for cut in 1..stream.len() {
        let two = drive(Bugs::NONE, OUTSIDE, &[&stream[..cut], &stream[cut..]]);
        assert_eq!(two, whole, "cut at {cut}");
    }
    let octets: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(drive(Bugs::NONE, OUTSIDE, &octets), whole);
}

#[test]
fn a_chunk_shorter_than_declared_swallows_the_next_command_as_body() {
    // The client declares more than its body: the foreign RCPT after it is
    // body, not a command, and the message goes to alice only.
    let rcpt = b"RCPT TO:<u@nmap.scanme.org>\r\n";
    let mut s = ENVELOPE.to_vec();
    s.extend_from_slice(format!("BDAT {} LAST\r\nhi\r\n", 4 + rcpt.len()).as_bytes());
    s.extend_from_slice(rcpt);
    s.extend_from_slice(b"QUIT\r\n");
    let (r, v) = drive(Bugs::NONE, OUTSIDE, &[&s]);
    starts(&replies(&r), &["250 2.1.0", "250 2.1.5", "250 2.0.0 Ok", "221"]);
    assert_eq!(r.messages.len(), 1);
    assert_eq!(r.messages[0].body, b"hi\r\nRCPT TO:<u@nmap.scanme.org>\r\n");
    assert_eq!(r.messages[0].recipients.len(), 1);
    assert!(v.violations.is_empty(), "{:?}", v.violations);
    assert_eq!(v.stats.foreign_messages_accepted, 0);
}

#[test]
fn a_chunk_longer_than_declared_leaves_commands_that_are_judged_as_such() {
    // The client declares less than its body: the rest is read as
    // commands, and a foreign RCPT there is refused as any other.
    let mut s = ENVELOPE.to_vec();
    s.extend_from_slice(
        b"BDAT 4 LAST\r\nhi\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@nmap.scanme.org>\r\nQUIT\r\n",
    );
    let (r, v) = drive(Bugs::NONE, OUTSIDE, &[&s]);
    starts(
        &replies(&r),
        &[
            "250 2.1.0",
            "250 2.1.5",
            "250 2.0.0 Ok",
            "250 2.1.0",
            "550 5.7.1",
            "221",
        ],
    );
    assert!(v.violations.is_empty(), "{:?}", v.violations);
}

/// A message of two chunks whose joined body is `a` then `b`.
fn two_chunks(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut s = ENVELOPE.to_vec();
    s.extend_from_slice(format!("BDAT {}\r\n", a.len()).as_bytes());
    s.extend_from_slice(a);
    s.extend_from_slice(format!("BDAT {} LAST\r\n", b.len()).as_bytes());
    s.extend_from_slice(b);
    s.extend_from_slice(b"QUIT\r\n");
    s
}

#[test]
fn a_bare_cr_lf_or_nul_anywhere_in_the_chunks_refuses_the_message_whole() {
    for (a, b) in [
        (&b"one\nline\r\n"[..], &b"two\r\n"[..]),
        (b"one\r\n", b"two\rthree\r\n"),
        (b"one\r", b"two\r\n"),
        (b"one\r\n", b"two\r"),
        (b"one\r\n\n", b"two\r\n"),
        (b"one\0\r\n", b"two\r\n"),
        (b"x\r\n.\n", b"MAIL FROM:<a@example.org>\r\n"),
    ] {
        let (r, v) = drive(Bugs::NONE, OUTSIDE, &[&two_chunks(a, b)]);
        starts(
            &replies(&r),
            &["250 2.1.0", "250 2.1.5", "250 2.0.0", "554 5.6.0", "221"],
        );
        assert!(r.messages.is_empty(), "{a:?} {b:?}");
        assert!(v.violations.is_empty(), "{:?}", v.violations);
    }
    // A CRLF cut between two chunks is a line end like any other.
    let (r, _) = drive(Bugs::NONE, OUTSIDE, &[&two_chunks(b"one\r", b"\ntwo\r\n")]);
    assert_eq!(r.messages[0].body, b"one\r\ntwo\r\n");
}

#[test]
fn the_bare_lf_bug_is_caught_by_the_oracle() {
    let bug = Bugs::NONE.with(Bug::BdatBareLfPasses);
    let (r, v) = drive(bug, OUTSIDE, &[&two_chunks(b"one\nline\r\n", b"two\r\n")]);
    assert_eq!(r.messages.len(), 1, "the bug lets it through");
    assert!(
        v.violations
            .iter()
            .any(|v| v.kind == ViolationKind::BareLineEnding),
        "{:?}",
        v.violations
    );
}

#[test]
fn a_body_without_a_final_line_end_gets_one() {
    let (r, v) = drive(
        Bugs::NONE,
        OUTSIDE,
        &[&two_chunks(b"Subject: x\r\n\r\n", b"no end")],
    );
    assert_eq!(r.messages[0].body, b"Subject: x\r\n\r\nno end\r\n");
    assert!(v.violations.is_empty(), "{:?}", v.violations);
}

#[test]
fn bdat_0_last_ends_a_message() {
    let (r, v) = drive(
        Bugs::NONE,
        OUTSIDE,
        &[&two_chunks(b"Subject: x\r\n\r\nhi\r\n", b"")],
    );
    starts(
        &replies(&r),
        &[
            "250 2.1.0",
            "250 2.1.5",
            "250 2.0.0 18 octets",
            "250 2.0.0 Ok",
            "221",
        ],
    );
    assert_eq!(r.messages[0].body, b"Subject: x\r\n\r\nhi\r\n");
    assert!(v.violations.is_empty(), "{:?}", v.violations);
    // With no chunk before it: an empty message, as DATA's `.` alone.
    let mut s = ENVELOPE.to_vec();
    s.extend_from_slice(b"BDAT 0 LAST\r\nQUIT\r\n");
    let (r, v) = drive(Bugs::NONE, OUTSIDE, &[&s]);
    assert_eq!(r.messages.len(), 1);
    assert!(r.messages[0].body.is_empty());
    assert!(v.violations.is_empty(), "{:?}", v.violations);
}

#[test]
fn a_declared_size_past_the_limit_is_refused_before_any_octet_is_kept() {
    // One chunk past the limit: refused at once; its octets, a foreign RCPT
    // among them, are skipped, not served.
    let mut d = Driver::new(policy(Bugs::NONE), ip(OUTSIDE));
    d.feed(ENVELOPE);
    d.feed(b"BDAT 100000 LAST\r\n");
    assert!(
        String::from_utf8_lossy(&d.run.sent)
            .ends_with("552 5.3.4 Error: message size exceeds fixed limit\r\n")
    );
    let filler = [b'x'; 1000];
    let mut sent = 0;
    while sent + filler.len() + 64 < 100_000 {
        d.feed(&filler);
        sent += filler.len();
        assert!(d.session.buffered() < 64, "{} held", d.session.buffered());
    }
    let hidden = b"\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@nmap.scanme.org>\r\n";
    d.feed(hidden);
    let before = d.run.sent.len();
    let rest = 100_000 - sent - hidden.len();
    d.feed(&vec![b'y'; rest]);
    assert_eq!(d.run.sent.len(), before, "skipped octets were answered");
    d.feed(b"QUIT\r\n");
    let (r, v) = d.finish();
    starts(&replies(&r), &["250 2.1.0", "250 2.1.5", "552 5.3.4", "221"]);
    assert!(r.messages.is_empty());
    assert!(v.violations.is_empty(), "{:?}", v.violations);

    // The chunks together past the limit: the one that crosses it is
    // refused, the transaction ends, and a later chunk is refused too.
    let mut s = ENVELOPE.to_vec();
    s.extend_from_slice(b"BDAT 3000\r\n");
    s.extend_from_slice(&[b'a'; 3000]);
    s.extend_from_slice(b"BDAT 3000\r\n");
    s.extend_from_slice(&[b'b'; 3000]);
    s.extend_from_slice(b"BDAT 2 LAST\r\n\r\nQUIT\r\n");
    let (r, v) = drive(Bugs::NONE, OUTSIDE, &[&s]);
    starts(
        &replies(&r),
        &[
            "250 2.1.0",
            "250 2.1.5",
            "250 2.0.0 3000",
            "552 5.3.4",
            "503 5.5.1",
            "221",
        ],
    );
    assert!(r.messages.is_empty());
    assert!(v.violations.is_empty(), "{:?}", v.violations);
}

#[test]
fn sequencing_and_syntax() {
    // BDAT without MAIL, or without an accepted RCPT: 503, octets skipped
    // (the QUIT inside is not served).
    let (r, _) = drive(
        Bugs::NONE,
        OUTSIDE,
        &[b"EHLO c.example.org\r\nBDAT 6\r\nQUIT\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@nmap.scanme.org>\r\nBDAT 6 LAST\r\nQUIT\r\nNOOP\r\nQUIT\r\n"],
    );
    starts(
        &replies(&r),
        &["503 5.5.1", "250 2.1.0", "550 5.7.1", "503 5.5.1", "250", "221"],
    );
    // DATA after BDAT in the same transaction.
    let mut s = ENVELOPE.to_vec();
    s.extend_from_slice(b"BDAT 4\r\nhi\r\nDATA\r\nBDAT 4 LAST\r\nyo\r\nQUIT\r\n");
    let (r, v) = drive(Bugs::NONE, OUTSIDE, &[&s]);
    starts(
        &replies(&r),
        &[
            "250 2.1.0",
            "250 2.1.5",
            "250 2.0.0 4",
            "503 5.5.1",
            "250 2.0.0 Ok",
            "221",
        ],
    );
    assert_eq!(r.messages[0].body, b"hi\r\nyo\r\n");
    assert!(v.violations.is_empty(), "{:?}", v.violations);
    // Malformed sizes.
    for bad in [
        "BDAT",
        "BDAT x",
        "BDAT -4",
        "BDAT 4 NOW",
        "BDAT 123456789012345678901 LAST",
    ] {
        let mut s = ENVELOPE.to_vec();
        s.extend_from_slice(format!("{bad}\r\nQUIT\r\n").as_bytes());
        let (r, _) = drive(Bugs::NONE, OUTSIDE, &[&s]);
        starts(&replies(&r), &["250 2.1.0", "250 2.1.5", "501 5.5.4", "221"]);
    }
}

#[test]
fn chunks_may_be_pipelined_with_the_envelope() {
    // Unlike bytes after DATA, bytes after BDAT are the chunk: no 554.
    let mut s =
        b"EHLO pc.lan\r\nMAIL FROM:<pc@example.com>\r\nRCPT TO:<relaytest@nmap.scanme.org>\r\n".to_vec();
    s.extend_from_slice(b"BDAT 6\r\nhello BDAT 9 LAST\r\nworld\r\n\r\nQUIT\r\n");
    let (r, v) = drive(Bugs::NONE, LAN, &[&s]);
    starts(
        &replies(&r),
        &["250 2.1.0", "250 2.1.5", "250 2.0.0 6", "250 2.0.0 Ok", "221"],
    );
    assert_eq!(r.messages[0].body, b"hello world\r\n\r\n");
    assert!(v.violations.is_empty(), "{:?}", v.violations);
    assert_eq!(v.stats.foreign_messages_accepted, 1);
}

/// A session at `now` zero from outside, replies drained.
fn start(stream: bool) -> Session {
    let mut s = Session::new(policy(Bugs::NONE), Peer::direct(ip(OUTSIDE)), Duration::ZERO);
    if stream {
        s.stream_bodies();
    }
    s
}

#[test]
fn streamed_pieces_rebuild_the_chunked_body() {
    const BIG: &str = r#"
hostname = "mail.example.com"
[domains]
local = ["example.com"]
mailboxes = ["alice@example.com"]
[limits]
max_message_size = 4000000
"#;
    let policy = Arc::new(Policy::new(Config::from_toml(BIG).unwrap()).unwrap());
    let mut s = Session::new(policy, Peer::direct(ip(OUTSIDE)), Duration::ZERO);
    s.stream_bodies();
    let now = Duration::ZERO;
    let mut seen = Seen::default();
    let mut body = Vec::new();
    let mut i = 0;
    while body.len() < 3 * BODY_PIECE + 1000 {
        body.extend_from_slice(format!("line {i:07} of a big chunked message\r\n").as_bytes());
        i += 1;
    }
    let mut input = ENVELOPE.to_vec();
    // Chunks of odd sizes, so that pieces and chunks never line up.
    let mut at = 0;
    while at < body.len() {
        let n = (body.len() - at).min(50_001);
        let last = if at + n == body.len() { " LAST" } else { "" };
        input.extend_from_slice(format!("BDAT {n}{last}\r\n").as_bytes());
        input.extend_from_slice(&body[at..at + n]);
        at += n;
    }
    for piece in input.chunks(7919) {
        s.handle_input(now, piece);
        drain(&mut s, now, &mut seen);
        assert!(s.buffered() <= BODY_PIECE + 7919, "{} held", s.buffered());
    }
    assert_eq!(seen.messages, vec![Vec::<u8>::new()], "{}", seen.wire);
    assert_eq!(seen.pieces.concat(), body);
    assert_eq!(seen.dropped, 0);

    // A bare LF in a later chunk: the pieces already out are dropped.
    let mut s = start(true);
    let mut seen = Seen::default();
    let mut input = ENVELOPE.to_vec();
    input.extend_from_slice(b"BDAT 3000\r\n");
    input.extend_from_slice(&[b'a'; 3000]);
    input.extend_from_slice(b"BDAT 4 LAST\r\nb\nc\r\n");
    s.handle_input(now, &input);
    drain(&mut s, now, &mut seen);
    assert!(seen.messages.is_empty());
    assert_eq!(seen.dropped, 1);
    assert!(seen.wire.contains("554 5.6.0"), "{}", seen.wire);
}

/// Sends one octet every 9 s from `now`, firing the session's timeouts as
/// they fall due: when the session closed, if it did within 100 octets.
fn trickle(s: &mut Session, mut now: Duration, seen: &mut Seen) -> Option<Duration> {
    for _ in 0..100 {
        now += Duration::from_secs(9);
        if let Some(d) = s.poll_timeout().filter(|&d| d <= now) {
            s.handle_timeout(d);
            drain(s, d, seen);
            if seen.closed {
                return Some(d);
            }
        }
        s.handle_input(now, b"x");
        drain(s, now, seen);
    }
    None
}

#[test]
fn chunks_run_under_the_data_deadline_not_the_command_one() {
    // One octet every 9 s: each is within the command timeout (10 s), so a
    // chunk judged by the command deadline would never time out. DATA's
    // deadline (30 s from the BDAT, plus little credit) cuts it.
    let mut s = start(false);
    let mut seen = Seen::default();
    let now = Duration::ZERO;
    s.handle_input(now, ENVELOPE);
    s.handle_input(now, b"BDAT 1000 LAST\r\n");
    drain(&mut s, now, &mut seen);
    let closed_at = trickle(&mut s, now, &mut seen);
    let at = closed_at.expect("the trickled chunk never timed out");
    assert!(at <= Duration::from_secs(31), "closed at {at:?}");
    assert!(
        seen.wire.ends_with("421 4.4.2 Error: timeout exceeded\r\n"),
        "{}",
        seen.wire
    );

    // A refused chunk's octets are skipped under the same deadline.
    let mut s = start(false);
    let mut seen = Seen::default();
    let now = Duration::ZERO;
    s.handle_input(now, b"EHLO c.example.org\r\nBDAT 1000\r\n");
    drain(&mut s, now, &mut seen);
    let closed_at = trickle(&mut s, now, &mut seen);
    let at = closed_at.expect("the skipped chunk never timed out");
    assert!(at <= Duration::from_secs(31), "closed at {at:?}");
}

#[test]
fn the_final_250_after_last_waits_for_the_store() {
    let mut s = start(false);
    let now = Duration::ZERO;
    let mut input = ENVELOPE.to_vec();
    input.extend_from_slice(b"BDAT 4\r\nhi\r\nBDAT 4 LAST\r\nyo\r\nNOOP\r\n");
    s.handle_input(now, &input);
    let mut wire = String::new();
    let mut message = None;
    while let Some(o) = s.poll_output() {
        match o {
            Output::Send(b) => wire.push_str(&String::from_utf8_lossy(&b)),
            Output::Message(m) => message = Some(m),
            _ => {}
        }
    }
    let m = message.expect("LAST hands the message out");
    assert_eq!(m.body, b"hi\r\nyo\r\n");
    assert!(wire.ends_with("250 2.0.0 4 octets received\r\n"), "{wire}");
    assert!(!wire.contains("queued"), "{wire}");
    s.message_stored(now, Ok("q9".into()));
    let mut after = String::new();
    while let Some(Output::Send(b)) = s.poll_output() {
        after.push_str(&String::from_utf8_lossy(&b));
    }
    assert_eq!(after, "250 2.0.0 Ok: queued as q9\r\n250 2.0.0 Ok\r\n");
}
