//! Runs whole in-memory transactions in a loop, for profilers that count
//! instructions (callgrind): `session_prof N`.
use std::net::IpAddr;
use std::sync::Arc;

use relayguard_core::Config;
use relayguard_core::Policy;
use relayguard_core::{Output, Peer, Session};

/// The shared fixture, so that this file keeps no copy of its own.
const CONFIG: &str = include_str!("../../corpus/configs/default.toml");

fn main() {
    let n: u32 = std::env::args().nth(1).map_or(10_000, |a| a.parse().expect("N"));
    let policy = Arc::new(Policy::new(Config::from_toml(CONFIG).unwrap()).unwrap());
    let ip: IpAddr = "192.168.1.10".parse().unwrap();
    let head = b"EHLO pc.lan\r\nMAIL FROM:<pc@lan.example>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nRCPT TO:<friend@elsewhere.example>\r\nDATA\r\n".to_vec();
    let mut body = b"From: pc@lan.example\r\nSubject: benchmark\r\n\r\n".to_vec();
    while body.len() < 4096 {
        body.extend_from_slice(
            b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n",
        );
    }
    body.extend_from_slice(b".\r\nQUIT\r\n");
    let mut stored = 0usize;
    for _ in 0..n {
        let now = std::time::Duration::ZERO;
        let mut s = Session::new(policy.clone(), Peer::direct(ip), now);
        for chunk in [&head, &body] {
            s.handle_input(now, chunk);
            while let Some(o) = s.poll_output() {
                if let Output::Message(m) = o {
                    stored += m.body.len();
                    s.message_stored(now, Ok("q".into()));
                }
            }
        }
    }
    println!("{n} transactions, {stored} octets stored");
}
