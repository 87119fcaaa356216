//! RCPT decisions with 10,000 LAN entries and 10,000 black-list entries.
//!
//! `cargo bench -p relayguard-core --bench policy`

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use relayguard_core::Config;
use relayguard_core::parse_path;
use relayguard_core::{Context, Policy};

fn policy() -> Policy {
    let mut c = Config {
        hostname: "mail.example.com".into(),
        ..Config::default()
    };
    c.domains.local = vec!["example.com".into()];
    c.domains.mailboxes = Some((0..1000).map(|i| format!("user{i}@example.com")).collect());
    // 10,000 LAN entries in every accepted form, scattered over 10.0.0.0/8.
    c.lan.networks = (0..10_000u32)
        .map(|i| {
            let (a, b) = (i / 256 % 256, i % 256);
            match i % 4 {
                0 => format!("10.{a}.{b}.0/28"),
                1 => format!("10.{a}.{b}.77"),
                2 => format!("10.{a}.{b}.100-120"),
                _ => format!("10.{a}.{b}.200-210"),
            }
        })
        .collect();
    // 10,000 black-list entries: networks and address patterns.
    c.lists.black = (0..10_000u32)
        .map(|i| match i % 3 {
            0 => format!("198.18.{}.{}", i / 256 % 256, i % 256),
            1 => format!("*@spam{i}.example"),
            _ => format!("bulk{i}@*.example.net"),
        })
        .collect();
    Policy::new(c).expect("valid")
}

fn decisions(c: &mut Criterion) {
    let p = policy();
    let outside: IpAddr = "203.0.113.7".parse().unwrap();
    let inside: IpAddr = "10.3.7.110".parse().unwrap();
    let from = parse_path("<sender@elsewhere.example>").unwrap();
    let rcpts: Vec<_> = [
        "<user17@example.com>",
        "<relaytest@nmap.scanme.org>",
        "<relaytest%nmap.scanme.org@example.com>",
    ]
    .iter()
    .map(|r| parse_path(r).unwrap())
    .collect();
    let mut g = c.benchmark_group("policy_10k_lists");
    g.throughput(Throughput::Elements(rcpts.len() as u64 * 2));
    g.bench_function("rcpt", |b| {
        b.iter(|| {
            for client in [outside, inside] {
                let ctx = Context {
                    client,
                    helo: None,
                    user: None,
                    sender: Some(&from),
                    accepted: 0,
                };
                for r in &rcpts {
                    black_box(p.rcpt(&ctx, black_box(r)));
                }
            }
        })
    });
    g.bench_function("connect", |b| b.iter(|| black_box(p.connect(black_box(outside)))));
    g.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
