//! `replay --target` over real loopback TCP, against a minimal server: the
//! core session on the node's session driver, which stores nothing and acks
//! every message. A closed configuration passes, an acknowledged open relay
//! is caught by the oracle.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use relayguard_core::Policy;
use relayguard_core::{Message, Peer, Session};
use relayguard_corpus::{collect, load_config, load_transcript};
use relayguard_node::{Clock, ServerHooks, StoreError, drive_server};

/// Acks every message without keeping it.
struct Ack;

impl ServerHooks for Ack {
    async fn store(&mut self, _message: Message) -> Result<String, StoreError> {
        Ok("t".into())
    }
}

/// Serves `connections` sessions one after another, then stops.
fn serve(policy: Arc<Policy>, connections: usize) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            for _ in 0..connections {
                let Ok((stream, peer)) = listener.accept().await else {
                    return;
                };
                let clock = Clock::start();
                let s = Session::new(policy.clone(), Peer::direct(peer.ip()), clock.now());
                let mut ack = Ack;
                let session = drive_server(stream, s, &clock, &mut ack);
                // A client that hangs must not hold up the sessions after it.
                let _ = tokio::time::timeout(Duration::from_secs(10), session).await;
            }
        });
    });
    addr
}

fn corpus(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(p)
}

fn run_attacks(server_config: &str) -> (usize, Vec<String>) {
    let judge = load_config(&corpus("configs/default.toml")).unwrap();
    let server = Arc::new(Policy::new(load_config(&corpus(server_config)).unwrap()).unwrap());
    let files: Vec<_> = collect(&[corpus("attacks")])
        .unwrap()
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("nmap-"))
        .collect();
    let target = serve(server, files.len());
    let mut failed = Vec::new();
    for f in &files {
        let t = load_transcript(f).unwrap();
        let o = relayguard::remote::replay(&t, &judge, target, None, Duration::from_secs(5)).unwrap();
        if !o.passed() {
            failed.push(f.file_stem().unwrap().to_string_lossy()[..7].to_string());
        }
    }
    (files.len(), failed)
}

#[test]
fn nmap_attacks_over_tcp_find_the_default_config_closed() {
    let (n, failed) = run_attacks("configs/default.toml");
    assert_eq!(n, 16);
    assert!(failed.is_empty(), "{failed:?}");
}

#[test]
fn nmap_attacks_over_tcp_catch_an_open_relay() {
    let (n, failed) = run_attacks("configs/open-relay.toml");
    assert_eq!(n, 16);
    // The open relay relays plain foreign recipients (tests 1-4) and source
    // routes, which name a foreign mailbox (12-13); routed local parts are
    // not rewritten there (no percent_hack) and are refused as unknown users.
    assert_eq!(
        failed,
        ["nmap-01", "nmap-02", "nmap-03", "nmap-04", "nmap-12", "nmap-13"]
    );
}
