//! Command parsing against smtp-proto on the same command mix, and whole
//! transactions through the session in memory.
//!
//! `cargo bench -p relayguard-core --bench protocol`

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use relayguard_core::Config;
use relayguard_core::Policy;
use relayguard_core::{Output, Peer, Session};

#[path = "common/command_mix.rs"]
mod command_mix;
use command_mix::{MIX, parse_relayguard, parse_smtp_proto};

fn parse(c: &mut Criterion) {
    let bytes: u64 = MIX.iter().map(|l| l.len() as u64).sum();
    for line in MIX {
        assert!(parse_relayguard(line), "{}", String::from_utf8_lossy(line));
        assert!(parse_smtp_proto(line), "{}", String::from_utf8_lossy(line));
    }
    let mut g = c.benchmark_group("parse_mix");
    g.throughput(Throughput::Elements(MIX.len() as u64));
    g.bench_function("relayguard", |b| {
        b.iter(|| {
            for line in MIX {
                black_box(parse_relayguard(black_box(line)));
            }
        })
    });
    g.bench_function("smtp-proto-0.2.5", |b| {
        b.iter(|| {
            for line in MIX {
                black_box(parse_smtp_proto(black_box(line)));
            }
        })
    });
    g.finish();
    let _ = bytes;
}

/// The shared fixture, so that this file keeps no copy of its own.
const CONFIG: &str = include_str!("../../corpus/configs/default.toml");

fn transaction_input() -> (Vec<u8>, Vec<u8>) {
    let head = b"EHLO pc.lan\r\nMAIL FROM:<pc@lan.example>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nRCPT TO:<friend@elsewhere.example>\r\nDATA\r\n".to_vec();
    let mut body = Vec::with_capacity(4200);
    body.extend_from_slice(b"From: pc@lan.example\r\nSubject: benchmark\r\n\r\n");
    while body.len() < 4096 {
        body.extend_from_slice(
            b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n",
        );
    }
    body.extend_from_slice(b".\r\nQUIT\r\n");
    (head, body)
}

fn transactions(c: &mut Criterion) {
    let policy = Arc::new(Policy::new(Config::from_toml(CONFIG).unwrap()).unwrap());
    let ip: IpAddr = "192.168.1.10".parse().unwrap();
    let (head, body) = transaction_input();
    let run = |policy: &Arc<Policy>| {
        let now = std::time::Duration::ZERO;
        let mut s = Session::new(policy.clone(), Peer::direct(ip), now);
        let mut sent = 0usize;
        let mut stored = 0usize;
        for chunk in [&head, &body] {
            s.handle_input(now, chunk);
            while let Some(o) = s.poll_output() {
                match o {
                    Output::Send(b) => sent += b.len(),
                    Output::Message(m) => {
                        stored += m.body.len();
                        s.message_stored(now, Ok("q".into()));
                    }
                    Output::Close | Output::StartTls => {}
                    Output::Body(_) | Output::DropBody => {}
                }
            }
        }
        (sent, stored)
    };
    let (_, stored) = run(&policy);
    assert!(stored >= 4096, "the message was not accepted");
    let mut g = c.benchmark_group("session");
    g.throughput(Throughput::Elements(1));
    g.bench_function("transaction_3rcpt_4KiB", |b| b.iter(|| black_box(run(&policy))));
    g.finish();
}

criterion_group!(benches, parse, transactions);
criterion_main!(benches);
