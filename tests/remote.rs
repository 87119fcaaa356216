//! `replay --target` over real loopback TCP, against a minimal blocking
//! server around the core session: a closed configuration passes, an
//! acknowledged open relay is caught by the oracle.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use relayguard_core::Policy;
use relayguard_core::{Output, Peer, Session};
use relayguard_corpus::{collect, load_config, load_transcript};

/// Serves `connections` sessions one after another, then stops.
fn serve(policy: Arc<Policy>, connections: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((mut stream, peer)) = listener.accept() else {
                return;
            };
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let now = Duration::ZERO;
            let mut s = Session::new(policy.clone(), Peer { ip: peer.ip() }, now);
            let mut buf = [0u8; 4096];
            'session: loop {
                while let Some(o) = s.poll_output() {
                    match o {
                        Output::Send(b) => {
                            if stream.write_all(&b).is_err() {
                                break 'session;
                            }
                        }
                        Output::Message(_) => s.message_stored(now, Ok("t".into())),
                        Output::Close => break 'session,
                    }
                }
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => s.handle_input(now, &buf[..n]),
                }
            }
        }
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
