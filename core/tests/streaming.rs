//! Sessions that stream bodies (`Session::stream_bodies`): the body comes
//! out in bounded pieces before its `Message`, the session never holds more
//! than about a piece of it, and a refused body ends with `DropBody`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use relayguard_core::{BODY_PIECE, Output, Peer, Policy, Session};

mod common;
use common::{Seen, drain};

const CONFIG: &str = r#"
hostname = "mail.example.com"
[domains]
local = ["example.com"]
mailboxes = ["alice@example.com"]
[limits]
max_message_size = 4000000
"#;

fn session() -> Session {
    let policy = Arc::new(Policy::new(relayguard_core::Config::from_toml(CONFIG).unwrap()).unwrap());
    let ip: IpAddr = "203.0.113.7".parse().unwrap();
    let mut s = Session::new(policy, Peer::direct(ip), Duration::ZERO);
    s.stream_bodies();
    s
}

/// Feeds each input in one call, drains the outputs (storing every
/// message), and records what came out.
fn drive(inputs: &[&[u8]]) -> Seen {
    let mut s = session();
    let mut seen = Seen::default();
    let now = Duration::from_millis(1);
    drain(&mut s, now, &mut seen);
    for input in inputs {
        s.handle_input(now, input);
        drain(&mut s, now, &mut seen);
    }
    seen
}

const HEAD: &[u8] =
    b"EHLO c.example.org\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n";

fn big_body(lines: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..lines {
        body.extend_from_slice(
            format!("line {i:07} of a large message, some text to fill it\r\n").as_bytes(),
        );
    }
    body
}

#[test]
fn a_large_body_comes_out_in_bounded_pieces_before_its_message() {
    let body = big_body(40_000); // about 2.2 MB
    let mut data = body.clone();
    data.extend_from_slice(b".\r\nQUIT\r\n");
    // The whole body in one input: the session must still hold no more
    // than the input it was given plus about a piece.
    let seen = drive(&[HEAD, &data]);
    assert!(seen.pieces.len() > 10, "{} pieces", seen.pieces.len());
    assert!(seen.pieces.iter().all(|p| p.len() <= BODY_PIECE + 2));
    assert_eq!(seen.pieces.concat(), body);
    assert_eq!(
        seen.messages,
        vec![Vec::<u8>::new()],
        "the message carries no body"
    );
    assert!(seen.wire.contains("250 2.0.0 Ok: queued as q1"), "{}", seen.wire);
    assert_eq!(seen.dropped, 0);
}

/// A driver that has not taken the waiting piece gets no second one: the
/// rest of the body stays in the session's input, and `buffered` counts
/// the piece waiting as well as the input held.
#[test]
fn no_second_piece_before_the_first_is_taken() {
    let body = big_body(40_000);
    let mut s = session();
    let mut seen = Seen::default();
    let now = Duration::from_millis(1);
    drain(&mut s, now, &mut seen);
    s.handle_input(now, HEAD);
    drain(&mut s, now, &mut seen);
    s.handle_input(now, &body);
    assert!(s.buffered() >= body.len(), "{} of {}", s.buffered(), body.len());
    let Some(Output::Body(first)) = s.poll_output() else {
        panic!("no piece")
    };
    assert!(first.len() <= BODY_PIECE + 2);
    assert!(s.buffered() >= body.len() - first.len());
}

#[test]
fn the_session_holds_a_piece_not_the_message() {
    let body = big_body(40_000);
    let mut data = body.clone();
    data.extend_from_slice(b".\r\n");
    let mut inputs: Vec<&[u8]> = vec![HEAD];
    inputs.extend(data.chunks(8192));
    let seen = drive(&inputs);
    assert_eq!(seen.pieces.concat(), body);
    assert!(
        seen.peak <= BODY_PIECE + 2 * 8192,
        "held {} octets for a {}-octet body",
        seen.peak,
        body.len()
    );
}

#[test]
fn a_refused_body_is_dropped_and_never_handed_on() {
    let mut data = big_body(3_000);
    data.extend_from_slice(b"bare\nLF\r\n");
    data.extend_from_slice(&big_body(3_000));
    data.extend_from_slice(b".\r\n");
    let seen = drive(&[HEAD, &data]);
    assert!(seen.messages.is_empty());
    assert_eq!(seen.dropped, 1);
    assert!(seen.wire.contains("554 5.6.0"), "{}", seen.wire);
    // Nothing after the bare LF is written out.
    assert!(
        seen.pieces.concat().len() < 3_000 * 60,
        "the tainted part was streamed"
    );

    let mut huge = big_body(80_000); // over the 4 MB limit
    huge.extend_from_slice(b".\r\n");
    let seen = drive(&[HEAD, &huge]);
    assert!(seen.messages.is_empty());
    assert_eq!(seen.dropped, 1);
    assert!(seen.wire.contains("552 5.3.4"), "{}", seen.wire);
    assert!(seen.pieces.concat().len() <= 4_000_000);
}

#[test]
fn a_small_body_is_one_piece_and_an_empty_one_none() {
    let seen = drive(&[HEAD, b"Subject: hi\r\n\r\nhello\r\n.\r\n"]);
    assert_eq!(seen.pieces, vec![b"Subject: hi\r\n\r\nhello\r\n".to_vec()]);
    assert_eq!(seen.messages.len(), 1);
    let seen = drive(&[HEAD, b".\r\n"]);
    assert!(seen.pieces.is_empty());
    assert_eq!(seen.messages.len(), 1);
}
