//! The server session, driven in memory: one test per command and reply,
//! then the properties of issue "Core protocol" (splits, arbitrary bytes,
//! reply syntax, smuggling).

use std::net::IpAddr;
use std::sync::Arc;

use proptest::prelude::*;
use relayguard_core::Policy;
use relayguard_core::check::SMUGGLING_SEQUENCES;
use relayguard_core::check::drive::{Driver, Run, run};
use relayguard_core::check_line;

const CONFIG: &str = r#"
hostname = "mail.example.com"
own_addresses = ["198.51.100.25"]
[domains]
local = ["example.com"]
mailboxes = ["alice@example.com", "bob@example.com", "postmaster@example.com"]
[lan]
networks = ["192.168.1.0/24"]
[auth]
users = [{ name = "carol", password = "secret", relay = true }]
[limits]
max_message_size = 4096
max_errors = 5
max_recipients = 3
"#;

fn policy() -> Arc<Policy> {
    Arc::new(Policy::new(relayguard_core::Config::from_toml(CONFIG).unwrap()).unwrap())
}

const LAN: &str = "192.168.1.10";
const OUTSIDE: &str = "203.0.113.7";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The replies as text lines, greeting dropped.
fn replies(r: &Run) -> Vec<String> {
    let text = String::from_utf8_lossy(&r.sent).into_owned();
    text.split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn session(from: &str, chunks: &[&str]) -> Run {
    let chunks: Vec<&[u8]> = chunks.iter().map(|c| c.as_bytes()).collect();
    run(policy(), ip(from), &chunks)
}

/// Feeds each line as its own chunk and returns the reply codes.
fn codes(from: &str, lines: &[&str]) -> Vec<String> {
    let owned: Vec<String> = lines.iter().map(|l| format!("{l}\r\n")).collect();
    let chunks: Vec<&str> = owned.iter().map(String::as_str).collect();
    replies(&session(from, &chunks))
        .iter()
        .filter(|l| l.as_bytes().get(3) != Some(&b'-'))
        .map(|l| l[..3].to_string())
        .collect()
}

#[test]
fn greeting_and_ehlo_keywords() {
    let r = session(LAN, &["EHLO client.example\r\n"]);
    let text = String::from_utf8(r.sent).unwrap();
    assert!(text.starts_with("220 mail.example.com ESMTP"), "{text}");
    for kw in [
        "PIPELINING",
        "SIZE 4096",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "AUTH PLAIN LOGIN",
    ] {
        assert!(text.contains(&format!("250-{kw}\r\n")), "{kw} missing in {text}");
    }
    assert!(text.ends_with("250 HELP\r\n"));
}

#[test]
fn lan_client_relays_a_message() {
    let r = session(
        LAN,
        &[
            "EHLO pc.lan\r\n",
            "MAIL FROM:<pc@lan.example>\r\n",
            "RCPT TO:<relaytest@nmap.scanme.org>\r\n",
            "DATA\r\n",
            "Subject: hi\r\n\r\n..dotted\r\n.\r\n",
            "QUIT\r\n",
        ],
    );
    let lines = replies(&r);
    assert!(lines.iter().any(|l| l.starts_with("250 2.1.5")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("354")), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("250 2.0.0 Ok: queued as M1")),
        "{lines:?}"
    );
    assert_eq!(lines.last().unwrap(), "221 2.0.0 Bye");
    assert!(r.closed);
    assert_eq!(r.messages.len(), 1);
    assert_eq!(r.messages[0].body, b"Subject: hi\r\n\r\n.dotted\r\n");
    assert_eq!(r.messages[0].recipients.len(), 1);
}

#[test]
fn outsider_cannot_relay_but_reaches_local_mailboxes() {
    let c = codes(
        OUTSIDE,
        &[
            "EHLO x.example",
            "MAIL FROM:<s@x.example>",
            "RCPT TO:<u@nmap.scanme.org>",
            "RCPT TO:<alice@example.com>",
            "RCPT TO:<nobody@example.com>",
        ],
    );
    assert_eq!(c, ["250", "250", "550", "250", "550"]);
}

#[test]
fn command_sequencing() {
    assert_eq!(codes(OUTSIDE, &["MAIL FROM:<a@x.example>"]), ["503"]);
    assert_eq!(
        codes(OUTSIDE, &["HELO x", "RCPT TO:<alice@example.com>"]),
        ["250", "503"]
    );
    assert_eq!(codes(OUTSIDE, &["HELO x", "DATA"]), ["250", "503"]);
    assert_eq!(
        codes(OUTSIDE, &["HELO x", "MAIL FROM:<a@x.example>", "DATA"]),
        ["250", "250", "503"]
    );
    assert_eq!(
        codes(
            OUTSIDE,
            &["HELO x", "MAIL FROM:<a@x.example>", "MAIL FROM:<a@x.example>"]
        ),
        ["250", "250", "503"]
    );
    assert_eq!(
        codes(
            OUTSIDE,
            &[
                "HELO x",
                "MAIL FROM:<a@x.example>",
                "RSET",
                "MAIL FROM:<a@x.example>"
            ]
        ),
        ["250", "250", "250", "250"]
    );
}

#[test]
fn syntax_and_unknown_commands() {
    assert_eq!(
        codes(
            OUTSIDE,
            &[
                "FOO",
                "EHLO",
                "HELO x",
                "MAIL FROM:<a@x.example> BAR=1",
                "MAIL FROM:<a@@x>"
            ]
        ),
        ["500", "501", "250", "555", "501"]
    );
    let r = session(
        OUTSIDE,
        &[
            "HELO x\r\n",
            "MAIL FROM:<a@x.example>\r\n",
            "RCPT TO:<u@[321.1.2.3]>\r\n",
        ],
    );
    assert!(
        replies(&r).last().unwrap().starts_with("501 5.1.3"),
        "{:?}",
        replies(&r)
    );
}

/// A client told only "syntax error" cannot fix its address: the reply
/// names what is wrong with it.
#[test]
fn address_errors_are_named_in_the_reply() {
    let r = session(
        OUTSIDE,
        &[
            "HELO x\r\n",
            "MAIL FROM:<a@>\r\n",
            "MAIL FROM:<a@x.example>\r\n",
            "RCPT TO:<\"u@x.example>\r\n",
        ],
    );
    let got = replies(&r);
    assert_eq!(got[1], "501 5.1.7 Bad sender address syntax: address ends in @");
    assert_eq!(
        got[3],
        "501 5.1.3 Bad recipient address syntax: address not enclosed in <>"
    );
}

#[test]
fn small_commands() {
    let c = codes(
        OUTSIDE,
        &["NOOP", "VRFY alice", "EXPN staff", "HELP", "STARTTLS", "QUIT"],
    );
    assert_eq!(c, ["250", "252", "502", "214", "502", "221"]);
}

#[test]
fn error_limit_ends_the_session() {
    let r = session(OUTSIDE, &["FOO\r\nFOO\r\nFOO\r\nFOO\r\nFOO\r\nFOO\r\nNOOP\r\n"]);
    let lines = replies(&r);
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert!(lines[5].starts_with("421 4.7.0"));
    assert!(r.closed);
}

#[test]
fn a_noop_flood_is_cut_after_max_junk_commands() {
    // 200,000 pipelined NOOPs in one chunk: the default limit (100) answers
    // the first 100 and closes with 421 at the next one.
    let flood = "NOOP\r\n".repeat(200_000);
    let r = session(OUTSIDE, &["EHLO x.example\r\n", &flood]);
    let lines: Vec<String> = replies(&r)
        .into_iter()
        .filter(|l| !l.starts_with("250-"))
        .collect();
    assert_eq!(
        lines.len(),
        1 + 100 + 1,
        "{:?}",
        &lines[lines.len().saturating_sub(3)..]
    );
    assert!(lines[1..=100].iter().all(|l| l.starts_with("250 2.0.0")));
    assert!(lines[101].starts_with("421 4.7.0"), "{}", lines[101]);
    assert!(r.closed);
}

#[test]
fn rset_vrfy_help_count_as_junk_and_a_stored_message_resets_the_count() {
    let p = Arc::new(
        Policy::new(
            relayguard_core::Config::from_toml(
                &CONFIG.replace("[limits]", "[limits]\nmax_junk_commands = 3"),
            )
            .unwrap(),
        )
        .unwrap(),
    );
    let mail = "MAIL FROM:<a@x.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n";
    let chunks: Vec<&[u8]> = vec![
        b"EHLO x.example\r\n",
        b"NOOP\r\nRSET\r\nVRFY alice\r\n",
        mail.as_bytes(),
        b"hi\r\n.\r\n",
        b"HELP\r\nNOOP\r\nNOOP\r\n",
        b"NOOP\r\n",
    ];
    let r = relayguard_core::check::drive::run(p, ip(OUTSIDE), &chunks);
    let codes: Vec<String> = replies(&r)
        .iter()
        .filter(|l| l.as_bytes().get(3) != Some(&b'-'))
        .map(|l| l[..3].to_string())
        .collect();
    assert_eq!(
        codes,
        [
            "250", "250", "250", "252", "250", "250", "354", "250", "214", "250", "250", "421"
        ]
    );
    assert_eq!(r.messages.len(), 1);
    assert!(r.closed);
}

#[test]
fn size_limits() {
    assert_eq!(
        codes(LAN, &["EHLO x", "MAIL FROM:<a@x.example> SIZE=5000"]),
        ["250", "552"]
    );
    // The limit itself is allowed; one octet more is not.
    assert_eq!(
        codes(
            LAN,
            &[
                "EHLO x",
                "MAIL FROM:<a@x.example> SIZE=4096",
                "RSET",
                "MAIL FROM:<a@x.example> SIZE=4097"
            ]
        ),
        ["250", "250", "250", "552"]
    );
    let big = format!("{}\r\n.\r\n", "x".repeat(5000));
    let r = session(
        LAN,
        &[
            "EHLO x\r\n",
            "MAIL FROM:<a@x.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n",
            &big,
            "NOOP\r\n",
        ],
    );
    let lines = replies(&r);
    assert!(lines.iter().any(|l| l.starts_with("552 5.3.4")), "{lines:?}");
    assert!(r.messages.is_empty());
    assert_eq!(lines.last().unwrap(), "250 2.0.0 Ok");
}

#[test]
fn overlong_line_is_refused_and_skipped() {
    let long = format!("NOOP {}\r\nNOOP\r\n", "a".repeat(3000));
    assert_eq!(codes(OUTSIDE, &[long.trim_end()]), ["500", "250"]);
    let r = session(OUTSIDE, &[&long]);
    assert!(replies(&r)[0].starts_with("500 5.5.2"));
}

/// The limit counts the whole line, CRLF included: 512 octets are served,
/// 513 are refused; and what follows a discarded line in the same read is
/// served as the next command.
#[test]
fn line_length_limit_is_exact_and_the_next_line_follows() {
    use relayguard_core::MAX_LINE;
    let line = |n: usize| format!("NOOP {}\r\n", "a".repeat(n - 7));
    assert_eq!(line(MAX_LINE).len(), MAX_LINE);
    assert_eq!(codes(OUTSIDE, &[line(MAX_LINE).trim_end()]), ["250"]);
    assert_eq!(codes(OUTSIDE, &[line(MAX_LINE + 1).trim_end()]), ["500"]);
    // The head of a long line in one read, its tail and the next command
    // in the next.
    let r = session(
        OUTSIDE,
        &[&"a".repeat(MAX_LINE + 10), "aaaa\r\nNOOP\r\n", "NOOP\r\n"],
    );
    let got: Vec<_> = replies(&r).iter().map(|l| l[..3].to_string()).collect();
    assert_eq!(got, ["500", "250", "250"], "{:?}", replies(&r));
}

/// A line that has not ended is held only up to the line limit; past it
/// the session holds nothing of it. A short partial line after pipelined
/// commands is held, whatever came before it in the read.
#[test]
fn partial_lines_are_held_up_to_the_limit() {
    use relayguard_core::{MAX_LINE, Peer, Session};
    use std::time::Duration;
    let mut s = Session::new(policy(), Peer::direct(ip(OUTSIDE)), Duration::ZERO);
    while s.poll_output().is_some() {}
    s.handle_input(Duration::ZERO, &vec![b'a'; 100_000]);
    assert!(s.buffered() <= MAX_LINE, "{}", s.buffered());
    let mut input = "NOOP\r\n".repeat(90);
    input.push_str("NO");
    let r = session(OUTSIDE, &[&input, "OP\r\n"]);
    let got = replies(&r);
    assert_eq!(got.len(), 91, "{got:?}");
    assert!(got.iter().all(|l| l.starts_with("250")), "{got:?}");
}

/// A PROXY version 2 header sent to a port that expects none is refused
/// as soon as its twelve-octet signature is complete.
#[test]
fn a_whole_proxy_v2_signature_is_refused_at_once() {
    use relayguard_core::proxy::V2_SIGNATURE;
    let r = session(OUTSIDE, &[std::str::from_utf8(&V2_SIGNATURE).unwrap()]);
    assert!(!replies(&r).is_empty(), "no answer to a whole signature");
    // After other lines (a discarded one counts) it is not the session's
    // first line, and the refusal says so.
    let long = "a".repeat(relayguard_core::MAX_LINE + 10);
    let sig = std::str::from_utf8(&V2_SIGNATURE).unwrap();
    let r = session(OUTSIDE, &[&long, "\r\nNOOP\r\n", sig]);
    let last = replies(&r).last().cloned().unwrap_or_default();
    assert!(last.contains("after the first byte of SMTP"), "{:?}", replies(&r));
}

#[test]
fn data_pipelined_before_354_is_a_violation() {
    let r = session(
        LAN,
        &[
            "EHLO x\r\n",
            "MAIL FROM:<a@x.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n",
        ],
    );
    let lines = replies(&r);
    assert_eq!(
        lines.last().unwrap(),
        "554 5.5.0 Error: SMTP protocol synchronization",
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.starts_with("354")), "{lines:?}");
    assert!(r.closed);
    assert!(r.messages.is_empty());
    // The same with the EHLO reply in the same output as the 354: only the
    // 354 is taken back.
    let r = session(
        LAN,
        &["EHLO x\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nhi\r\n.\r\n"],
    );
    let lines = replies(&r);
    assert!(!lines.iter().any(|l| l.starts_with("354")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("250-PIPELINING")), "{lines:?}");
    assert_eq!(
        lines.last().unwrap(),
        "554 5.5.0 Error: SMTP protocol synchronization"
    );
}

#[test]
fn pipelining_after_end_of_data_waits_for_the_store() {
    let mut d = Driver::new(policy(), ip(LAN));
    d.feed(b"EHLO x\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
    d.feed(b"hi\r\n.\r\nMAIL FROM:<b@x.example>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n");
    d.feed(b"two\r\n.\r\nQUIT\r\n");
    assert_eq!(d.run.messages.len(), 2);
    let lines = replies(&d.run);
    let tail: Vec<_> = lines.iter().rev().take(6).rev().map(|l| &l[..3]).collect();
    assert_eq!(tail, ["250", "250", "250", "354", "250", "221"], "{lines:?}");
}

/// A session whose message has been handed out to be stored, and its
/// outputs taken: it waits for `message_stored`.
fn awaiting_store() -> relayguard_core::Session {
    use relayguard_core::{Output, Peer, Session};
    use std::time::Duration;
    let mut s = Session::new(policy(), Peer::direct(ip(LAN)), Duration::ZERO);
    s.handle_input(
        Duration::ZERO,
        b"EHLO x\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n",
    );
    s.handle_input(Duration::ZERO, b"hi\r\n.\r\n");
    let mut stored = false;
    while let Some(o) = s.poll_output() {
        stored |= matches!(o, Output::Message(_));
    }
    assert!(stored);
    s
}

#[test]
fn message_stored_error_gives_451_and_no_250() {
    use relayguard_core::Output;
    use std::time::Duration;
    let mut s = awaiting_store();
    // Nothing is said until the store answers.
    assert_eq!(s.poll_output(), None);
    s.message_stored(
        Duration::ZERO,
        Err(relayguard_core::NotStored("disk full".into())),
    );
    let Some(Output::Send(b)) = s.poll_output() else {
        panic!()
    };
    assert!(b.starts_with(b"451 4.3.0"), "{}", String::from_utf8_lossy(&b));
}

/// Commands pipelined after the end of data wait for the store's answer,
/// a whole transaction's worth of them and more (here 2,520 octets);
/// beyond `MAX_PIPELINED` the client is not waiting and is cut off.
#[test]
fn commands_pipelined_behind_a_store_are_held_up_to_the_limit() {
    use relayguard_core::{MAX_PIPELINED, Output, Session};
    use std::time::Duration;
    let sent = |s: &mut Session| {
        let mut text = Vec::new();
        while let Some(o) = s.poll_output() {
            if let Output::Send(b) = o {
                text.extend_from_slice(&b);
            }
        }
        String::from_utf8(text).unwrap()
    };
    let mut s = awaiting_store();
    // Ninety, below the junk-command limit.
    s.handle_input(
        Duration::ZERO,
        "NOOP waiting for the store\r\n".repeat(90).as_bytes(),
    );
    assert_eq!(sent(&mut s), "");
    s.message_stored(Duration::ZERO, Ok("q1".into()));
    let text = sent(&mut s);
    assert!(text.starts_with("250 2.0.0 Ok: queued as q1\r\n"), "{text}");
    assert_eq!(text.matches("250 2.0.0 Ok\r\n").count(), 90, "{text}");
    let mut s = awaiting_store();
    s.handle_input(Duration::ZERO, &vec![b'x'; MAX_PIPELINED + 1]);
    let text = sent(&mut s);
    assert!(text.starts_with("554 5.5.0"), "{text:?}");
}

/// A client that does not read its replies is served until they hold
/// `MAX_PENDING_OUTPUT` octets: at exactly that many, one more command is
/// served, then the rest waits until the driver takes them.
#[test]
fn replies_are_held_up_to_max_pending_output_octets() {
    use relayguard_core::{MAX_PENDING_OUTPUT, Output, Peer, Session};
    use std::time::Duration;
    let config = CONFIG.replace("max_errors = 5", "max_errors = 5\nmax_junk_commands = 1000");
    let policy = Arc::new(Policy::new(relayguard_core::Config::from_toml(&config).unwrap()).unwrap());
    let mut s = Session::new(policy, Peer::direct(ip(LAN)), Duration::ZERO);
    while s.poll_output().is_some() {}
    // 22 octets (`250 mail.example.com`) and 291 times 14 (`250 2.0.0 Ok`).
    assert_eq!(22 + 291 * 14, MAX_PENDING_OUTPUT);
    let mut input = "HELO x\r\n".to_string();
    input.push_str(&"NOOP\r\n".repeat(291 + 5));
    s.handle_input(Duration::ZERO, input.as_bytes());
    let Some(Output::Send(first)) = s.poll_output() else {
        panic!("no reply")
    };
    assert_eq!(first.len(), MAX_PENDING_OUTPUT + 14);
}

/// A refusal by the relay policy is an error like any other: a spammer
/// probing recipients one after another reaches the error limit.
#[test]
fn policy_refusals_count_toward_the_error_limit() {
    let mut lines = vec!["EHLO x", "MAIL FROM:<s@x.example>"];
    lines.extend(["RCPT TO:<v@elsewhere.example>"; 6]);
    assert_eq!(
        codes(OUTSIDE, &lines),
        ["250", "250", "550", "550", "550", "550", "550", "421"]
    );
}

/// A session marked as authenticated (a submission port behind another
/// authenticator) relays as a logged-in client does.
#[test]
fn a_session_marked_authenticated_may_relay() {
    let mut d = Driver::new(policy(), ip(OUTSIDE));
    d.authenticate("carol");
    d.feed(b"EHLO x\r\nMAIL FROM:<carol@x.example>\r\nRCPT TO:<friend@elsewhere.example>\r\n");
    assert!(
        replies(&d.run).last().unwrap().starts_with("250"),
        "{:?}",
        replies(&d.run)
    );
    let mut d = Driver::new(policy(), ip(OUTSIDE));
    d.feed(b"EHLO x\r\nMAIL FROM:<carol@x.example>\r\nRCPT TO:<friend@elsewhere.example>\r\n");
    assert!(
        replies(&d.run).last().unwrap().starts_with("550 5.7.1"),
        "{:?}",
        replies(&d.run)
    );
}

#[test]
fn bare_lf_message_is_refused_whole() {
    let r = session(
        OUTSIDE,
        &[
            "EHLO x\r\n",
            "MAIL FROM:<s@x.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n",
            "one\n.\nMAIL FROM:<admin@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nspoof\r\n.\r\n",
            "QUIT\r\n",
        ],
    );
    let lines = replies(&r);
    assert!(lines.iter().any(|l| l.starts_with("554 5.6.0")), "{lines:?}");
    assert!(r.messages.is_empty());
    assert_eq!(lines.last().unwrap(), "221 2.0.0 Bye");
}

#[test]
fn timeouts_close_with_421() {
    let mut d = Driver::new(policy(), ip(OUTSIDE));
    d.feed(b"EHLO x\r\n");
    d.expire();
    assert!(replies(&d.run).last().unwrap().starts_with("421 4.4.2"));
    assert!(d.run.closed);
    assert_eq!(d.session.poll_timeout(), None);
}

fn b64(s: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn auth_plain_and_login() {
    let ok = format!("AUTH PLAIN {}", b64(b"\0carol\0secret"));
    let bad = format!("AUTH PLAIN {}", b64(b"\0carol\0wrong"));
    assert_eq!(
        codes(OUTSIDE, &["EHLO x", &bad, &ok, &ok]),
        ["250", "535", "235", "503"]
    );
    assert_eq!(
        codes(OUTSIDE, &["EHLO x", "AUTH PLAIN", &b64(b"\0carol\0secret")]),
        ["250", "334", "235"]
    );
    assert_eq!(
        codes(
            OUTSIDE,
            &["EHLO x", "AUTH LOGIN", &b64(b"carol"), &b64(b"secret")]
        ),
        ["250", "334", "334", "235"]
    );
    assert_eq!(
        codes(OUTSIDE, &["EHLO x", "AUTH PLAIN", "*"]),
        ["250", "334", "501"]
    );
    assert_eq!(codes(OUTSIDE, &["EHLO x", "AUTH PLAIN !!!"]), ["250", "501"]);
    assert_eq!(codes(OUTSIDE, &["EHLO x", "AUTH CRAM-MD5"]), ["250", "504"]);
    assert_eq!(codes(OUTSIDE, &["HELO x", &ok]), ["250", "503"]);
    let impersonate = format!("AUTH PLAIN {}", b64(b"alice\0carol\0secret"));
    assert_eq!(codes(OUTSIDE, &["EHLO x", &impersonate]), ["250", "535"]);
    // Authenticated, carol may relay from outside.
    assert_eq!(
        codes(
            OUTSIDE,
            &[
                "EHLO x",
                &ok,
                "MAIL FROM:<carol@example.com>",
                "RCPT TO:<u@nmap.scanme.org>"
            ]
        ),
        ["250", "235", "250", "250"]
    );
}

#[test]
fn smtputf8_is_required_for_non_ascii_addresses() {
    assert_eq!(
        codes(LAN, &["EHLO x", "MAIL FROM:<jörg@x.example>"]),
        ["250", "553"]
    );
    assert_eq!(
        codes(
            LAN,
            &[
                "EHLO x",
                "MAIL FROM:<jörg@x.example> SMTPUTF8",
                "RCPT TO:<u@bücher.example>"
            ]
        ),
        ["250", "250", "250"]
    );
}

// ---- properties ----

/// A legitimate session: EHLO, one transaction with the given body, QUIT.
fn legit_stream(body: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let head = b"EHLO pc.lan\r\nMAIL FROM:<pc@lan.example>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<u@nmap.scanme.org>\r\nDATA\r\n".to_vec();
    let mut tail = body.to_vec();
    tail.extend_from_slice(b".\r\nNOOP\r\nRSET\r\nQUIT\r\n");
    (head, tail)
}

fn split_at_points<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut prev = 0;
    for p in points {
        out.push(&bytes[prev..p]);
        prev = p;
    }
    out.push(&bytes[prev..]);
    out
}

fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b"\r\n".to_vec()),
            Just(b".".to_vec()),
            Just(b"..".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"\0".to_vec()),
            Just(b"\r\n.\r\n".to_vec()),
            "[a-zA-Z .:]{0,20}".prop_map(String::into_bytes),
        ],
        0..30,
    )
    .prop_map(|parts| {
        let mut b = parts.concat();
        if !b.ends_with(b"\r\n") {
            b.extend_from_slice(b"\r\n");
        }
        b
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// (a) Any split gives the same outputs, as long as the client waits
    /// for the 354 (the one rule that depends on the split on purpose).
    #[test]
    fn any_split_gives_the_same_outputs(body in body_strategy(), cuts_a in prop::collection::vec(any::<usize>(), 0..8), cuts_b in prop::collection::vec(any::<usize>(), 0..8)) {
        let (head, tail) = legit_stream(&body);
        let p = policy();
        let reference = run(p.clone(), ip(LAN), &[&head, &tail]);
        // The head ends with the DATA line, so that line always ends a chunk.
        let got = {
            let mut d = Driver::new(p, ip(LAN));
            let head_chunks = split_at_points(&head, &cuts_a);
            for c in &head_chunks { d.feed(c); }
            for c in split_at_points(&tail, &cuts_b) { d.feed(c); }
            d.run
        };
        prop_assert_eq!(&got, &reference);
    }

    /// (b) Arbitrary bytes never panic, and memory stays bounded.
    #[test]
    fn arbitrary_bytes_never_panic(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 0..12), lan in any::<bool>()) {
        let mut d = Driver::new(policy(), ip(if lan { LAN } else { OUTSIDE }));
        for c in &chunks {
            d.feed(c);
            prop_assert!(d.session.buffered() <= 4096 + 2 * relayguard_core::MAX_LINE + relayguard_core::MAX_PIPELINED);
        }
        // (c) whatever came in, every reply line is well formed.
        for line in d.run.sent.split_inclusive(|&b| b == b'\n') {
            prop_assert!(check_line(line).is_ok(), "{:?}", String::from_utf8_lossy(line));
        }
        let (_, verdict) = d.finish();
        prop_assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
    }

    /// (c) Every reply line is `ddd[ -]text<CRLF>` and at most 512 octets,
    /// for sessions made of real commands in random order.
    #[test]
    fn reply_lines_are_well_formed(cmds in prop::collection::vec(prop_oneof![
        Just("EHLO x".to_string()), Just("HELO x".to_string()), Just("RSET".to_string()), Just("DATA".to_string()),
        Just("AUTH PLAIN".to_string()), Just("*".to_string()),
        "[a-z@%!.\"<>:\\[\\]0-9]{0,40}".prop_map(|a| format!("RCPT TO:<{a}>")),
        "[a-z@.\"<>]{0,40}".prop_map(|a| format!("MAIL FROM:<{a}>")),
        "[ -~]{0,700}",
    ], 0..20)) {
        let text: String = cmds.iter().map(|c| format!("{c}\r\n")).collect();
        let r = run(policy(), ip(OUTSIDE), &[text.as_bytes()]);
        for line in r.sent.split_inclusive(|&b| b == b'\n') {
            prop_assert!(check_line(line).is_ok(), "{:?}", String::from_utf8_lossy(line));
        }
    }

    /// (e) No smuggling sequence ends DATA or starts a second message,
    /// wherever the input is split.
    #[test]
    fn smuggling_never_ends_data(seq in prop::sample::select(SMUGGLING_SEQUENCES.to_vec()), cut in any::<usize>()) {
        let mut stream = b"Subject: one\r\n\r\nfirst".to_vec();
        stream.extend_from_slice(seq);
        stream.extend_from_slice(b"MAIL FROM:<admin@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nspoof\r\n.\r\n");
        let mut d = Driver::new(policy(), ip(OUTSIDE));
        d.feed(b"EHLO x\r\nMAIL FROM:<s@x.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
        for c in split_at_points(&stream, &[cut]) {
            d.feed(c);
        }
        d.feed(b"\r\n.\r\nQUIT\r\n");
        prop_assert!(d.run.messages.is_empty(), "a message was handed on for {:?}", seq);
        let text = String::from_utf8_lossy(&d.run.sent).into_owned();
        prop_assert_eq!(text.matches("354 ").count(), 1, "{}", text);
        prop_assert!(!text.contains("250 2.0.0 Ok: queued"), "{}", text);
    }
}

/// `buffered` counts the body being received, in DATA and in BDAT chunks:
/// the bounds the other tests put on it could not fail if it said 0.
#[test]
fn buffered_counts_the_body_being_received() {
    let head = "EHLO pc.lan\r\nMAIL FROM:<pc@lan.example>\r\nRCPT TO:<alice@example.com>\r\n";
    let line = "0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    let body = line.repeat(25); // 950 octets

    let mut d = Driver::new(policy(), ip(LAN));
    d.feed(format!("{head}DATA\r\n").as_bytes());
    d.feed(body.as_bytes());
    assert!(
        d.session.buffered() >= body.len(),
        "DATA: {} held",
        d.session.buffered()
    );
    d.feed(b".\r\n");
    assert!(
        d.session.buffered() < line.len(),
        "after the message: {} held",
        d.session.buffered()
    );

    let mut d = Driver::new(policy(), ip(LAN));
    d.feed(format!("{head}BDAT {}\r\n", body.len() + 100).as_bytes());
    d.feed(body.as_bytes());
    assert!(
        d.session.buffered() >= body.len(),
        "BDAT: {} held",
        d.session.buffered()
    );
}

/// With no user configured, EHLO offers no AUTH and AUTH is refused as not
/// enabled, before any exchange.
#[test]
fn no_users_no_auth() {
    let config = CONFIG.replace(
        r#"users = [{ name = "carol", password = "secret", relay = true }]"#,
        "users = []",
    );
    assert_ne!(config, CONFIG, "the fixture's user line moved");
    let policy = Arc::new(Policy::new(relayguard_core::Config::from_toml(&config).unwrap()).unwrap());
    let r = run(
        policy,
        ip(OUTSIDE),
        &[b"EHLO client.example\r\nAUTH PLAIN AGNhcm9sAHNlY3JldA==\r\n"],
    );
    let lines = replies(&r);
    assert!(!lines.iter().any(|l| l.contains("AUTH")), "{lines:?}");
    assert!(
        lines.last().is_some_and(|l| l.starts_with("502 5.5.1")),
        "{lines:?}"
    );
    // With the user, the same session is offered AUTH and logs in.
    let lines = replies(&session(
        OUTSIDE,
        &["EHLO client.example\r\nAUTH PLAIN AGNhcm9sAHNlY3JldA==\r\n"],
    ));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("250-AUTH") || l.starts_with("250 AUTH")),
        "{lines:?}"
    );
    assert!(lines.last().is_some_and(|l| l.starts_with("235")), "{lines:?}");
}
