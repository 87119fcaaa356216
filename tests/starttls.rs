//! STARTTLS over real TLS on loopback: rustls on both ends, a certificate
//! made by rcgen at test time. The node's session driver (what `serve`
//! runs) serves; the corpus' STARTTLS transcripts are replayed over it by
//! `replay --target`'s client, which performs a real handshake at each
//! `T: handshake`; a raw client pipelines commands after STARTTLS in the
//! same write and must hear no reply to them; and `serve` itself, with
//! `[tls]` files, logs the octets it threw away and records the handshake.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use relayguard_core::check::buggify::{Bug, Bugs};
use relayguard_core::{Message, Peer, Policy, Session, whole_reply_len};
use relayguard_corpus::{collect, load_config, load_transcript};
use relayguard_node::tls;
use relayguard_node::{Clock, ServerHooks, StoreError, drive_server};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use common::Running;

mod common;

/// A throw-away certificate for `mail.example.com`: its DER chain and key,
/// and both as PEM.
struct TestCert {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_pem: String,
    key_pem: String,
}

fn test_cert() -> TestCert {
    let c = rcgen::generate_simple_self_signed(vec!["mail.example.com".into()]).unwrap();
    TestCert {
        chain: vec![c.cert.der().clone()],
        key: PrivateKeyDer::try_from(c.key_pair.serialize_der()).unwrap(),
        cert_pem: c.cert.pem(),
        key_pem: c.key_pair.serialize_pem(),
    }
}

/// Acks every message without keeping it, offers TLS, and reports how
/// many octets each session threw away after STARTTLS, and the body of
/// each message stored.
struct TlsAck {
    tls: Arc<rustls::ServerConfig>,
    injected: Sender<u64>,
    stored: Sender<Vec<u8>>,
}

impl ServerHooks for TlsAck {
    async fn store(&mut self, message: Message) -> Result<String, StoreError> {
        let _ = self.stored.send(message.body);
        Ok("t".into())
    }

    fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        Some(self.tls.clone())
    }

    fn tls_established(&mut self, injected: u64) {
        let _ = self.injected.send(injected);
    }
}

/// Serves `connections` sessions with `policy`, one after another, over the
/// node's driver with TLS offered; the receivers hear each handshake's
/// thrown-away octet count and each stored body, and are disconnected once
/// the last session is over.
fn serve(policy: Arc<Policy>, connections: usize) -> (SocketAddr, Receiver<u64>, Receiver<Vec<u8>>) {
    let cert = test_cert();
    let config = tls::server_config(tls::ring(), cert.chain, cert.key).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let (tx, rx) = channel();
    let (stored_tx, stored_rx) = channel();
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
                let mut s = Session::new(policy.clone(), Peer::direct(peer.ip()), clock.now());
                s.offer_tls();
                let mut hooks = TlsAck {
                    tls: config.clone(),
                    injected: tx.clone(),
                    stored: stored_tx.clone(),
                };
                let session = drive_server(stream, s, &clock, &mut hooks);
                // A client that hangs must not hold up the sessions after it.
                let _ = tokio::time::timeout(Duration::from_secs(10), session).await;
            }
        });
    });
    (addr, rx, stored_rx)
}

fn corpus(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(p)
}

/// The corpus' transcripts with a `T: handshake` step.
fn starttls_transcripts() -> Vec<PathBuf> {
    collect(&[corpus("")])
        .unwrap()
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .any(|l| l.trim_end() == "T: handshake")
        })
        .collect()
}

/// Replays `file` over real TLS against its `@config`, with `bugs`: the
/// verdict, whether the server saw a handshake, and what it sent.
fn replay_over_tls(file: &Path, bugs: Bugs) -> (relayguard_core::check::replay::Outcome, bool) {
    let t = load_transcript(file).unwrap();
    let config = load_config(&file.parent().unwrap().join(t.config.as_ref().unwrap())).unwrap();
    let (target, handshakes, _) = serve(Arc::new(Policy::with_bugs(config.clone(), bugs).unwrap()), 1);
    let o = relayguard::remote::replay(&t, &config, target, None, Duration::from_secs(5)).unwrap();
    let shook = handshakes.recv_timeout(Duration::from_secs(10)).is_ok();
    (o, shook)
}

#[test]
fn the_corpus_starttls_transcripts_pass_over_real_tls() {
    let files = starttls_transcripts();
    assert!(files.len() >= 2, "STARTTLS transcripts in the corpus: {files:?}");
    let mut failed = Vec::new();
    for f in &files {
        let (o, shook) = replay_over_tls(f, Bugs::NONE);
        let sent = String::from_utf8_lossy(&o.sent);
        // The handshake happened, and the session went on over it.
        let after = sent.split("220 2.0.0").nth(1).unwrap_or("");
        if !o.passed() || !shook || after.is_empty() {
            let name = f.file_name().unwrap().to_string_lossy();
            failed.push(format!("{name}: {:?}\n{sent}", o.violations));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn over_real_tls_the_injection_transcripts_catch_keep_buffer_after_starttls() {
    let files: Vec<_> = starttls_transcripts()
        .into_iter()
        .filter(|f| f.file_name().unwrap().to_string_lossy().contains("injection"))
        .collect();
    assert!(!files.is_empty());
    let bugs = Bugs::NONE.with(Bug::KeepBufferAfterStarttls);
    let missed: Vec<_> = files
        .iter()
        .filter(|f| replay_over_tls(f, bugs).0.passed())
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(missed.is_empty(), "the bug went unseen by {missed:?}");
}

/// What a client that pipelines MAIL and RCPT in the STARTTLS write hears.
#[derive(Debug)]
struct Injection {
    /// Everything before the handshake, after the EHLO reply.
    plain: String,
    /// Every reply over TLS, to the one QUIT sent there.
    over_tls: String,
    /// The octets pipelined after the STARTTLS line.
    sent_after: u64,
    /// What the server said it threw away; `None`: no handshake.
    thrown_away: Option<u64>,
}

/// Reads whole replies (or up to the close) until `want` are in.
fn read_replies(r: &mut impl Read, want: usize) -> String {
    let mut buf = Vec::new();
    let mut got = 0;
    while got < want {
        let mut chunk = [0u8; 4096];
        match r.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        let mut rest = &buf[..];
        got = 0;
        while let Some(end) = whole_reply_len(rest) {
            got += 1;
            rest = &rest[end..];
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn inject(bugs: Bugs) -> Injection {
    let config = load_config(&corpus("configs/default.toml")).unwrap();
    let (addr, handshakes, _) = serve(Arc::new(Policy::with_bugs(config, bugs).unwrap()), 1);
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    read_replies(&mut tcp, 1);
    tcp.write_all(b"EHLO inject.example\r\n").unwrap();
    read_replies(&mut tcp, 1);
    let injected = b"MAIL FROM:<s@outside.example>\r\nRCPT TO:<alice@example.com>\r\n";
    tcp.write_all(&[&b"STARTTLS\r\n"[..], injected].concat()).unwrap();
    // One write: the STARTTLS line and the injection arrive together.
    let plain = read_replies(&mut tcp, 1);
    let conn = rustls::ClientConnection::new(
        tls::client_config(tls::ring()).unwrap(),
        tls::server_name("mail.example.com"),
    )
    .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    // A server that answered the injection in plain text breaks the
    // handshake: what was heard is judged below, not here.
    let _ = tls.write_all(b"QUIT\r\n");
    let over_tls = read_replies(&mut tls, usize::MAX);
    Injection {
        plain,
        over_tls,
        sent_after: injected.len() as u64,
        thrown_away: handshakes.recv_timeout(Duration::from_secs(10)).ok(),
    }
}

/// The checks on what the injecting client heard: `Err` says which failed.
fn injection_refused(i: &Injection) -> Result<(), String> {
    if !i.plain.starts_with("220 2.0.0") || whole_reply_len(i.plain.as_bytes()) != Some(i.plain.len()) {
        return Err(format!("before the handshake, more than the 220: {:?}", i.plain));
    }
    if !i.over_tls.starts_with("221 ") || whole_reply_len(i.over_tls.as_bytes()) != Some(i.over_tls.len()) {
        return Err(format!("over TLS, more than QUIT's 221: {:?}", i.over_tls));
    }
    if i.thrown_away != Some(i.sent_after) {
        return Err(format!(
            "{:?} octets thrown away, {} injected",
            i.thrown_away, i.sent_after
        ));
    }
    Ok(())
}

#[test]
fn commands_pipelined_after_starttls_get_no_reply() {
    let i = inject(Bugs::NONE);
    assert_eq!(injection_refused(&i), Ok(()));
}

#[test]
fn the_injection_check_catches_a_server_that_runs_the_injected_commands() {
    let i = inject(Bugs::NONE.with(Bug::KeepBufferAfterStarttls));
    assert!(injection_refused(&i).is_err(), "the bug went unseen: {i:?}");
    // Seen for the right reason: the injected MAIL and RCPT were answered
    // over TLS, before QUIT's 221.
    assert!(!i.over_tls.starts_with("221 "), "{i:?}");
}

/// `serve` with `[tls]` files: its log counts the thrown-away octets and
/// `--record` writes the handshake as `T: handshake`.
#[test]
fn serve_with_tls_files_logs_the_thrown_away_octets_and_records_the_handshake() {
    let dir = std::env::temp_dir().join(format!("relayguard-starttls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cert = test_cert();
    std::fs::write(dir.join("cert.pem"), &cert.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &cert.key_pem).unwrap();
    // A configuration with AUTH users, so that EHLO has AUTH to show or hide.
    let mut config = std::fs::read_to_string(corpus("configs/require-auth.toml")).unwrap();
    config.push_str("\n[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n");
    std::fs::write(dir.join("relay.toml"), config).unwrap();
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_relayguard"))
            .args(["serve", "--config"])
            .arg(dir.join("relay.toml"))
            .args(["--listen", &listen.to_string(), "--spool"])
            .arg(dir.join("spool"))
            .arg("--record")
            .arg(dir.join("recorded"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (tx, log) = channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_line = |what: &str| {
        while let Ok(line) = log.recv_timeout(Duration::from_secs(20)) {
            if line.contains(what) {
                return Some(line);
            }
        }
        None
    };
    assert!(wait_line("serving").is_some(), "serve did not start");
    // The listener is bound just after the "serving" line.
    let mut tcp = (0..100)
        .find_map(|_| {
            TcpStream::connect(listen).ok().or_else(|| {
                std::thread::sleep(Duration::from_millis(50));
                None
            })
        })
        .unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    read_replies(&mut tcp, 1);
    tcp.write_all(b"EHLO serve.example\r\n").unwrap();
    let ehlo = read_replies(&mut tcp, 1);
    tcp.write_all(b"STARTTLS\r\nNOOP\r\n").unwrap();
    let plain = read_replies(&mut tcp, 1);
    let conn = rustls::ClientConnection::new(
        tls::client_config(tls::ring()).unwrap(),
        tls::server_name("mail.example.com"),
    )
    .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"EHLO serve.example\r\n").unwrap();
    let ehlo_tls = read_replies(&mut tls, 1);
    tls.write_all(b"QUIT\r\n").unwrap();
    let bye = read_replies(&mut tls, usize::MAX);
    let established = wait_line("TLS established");
    let closed = wait_line("closed");
    // SIGTERM: serve stops once the session is closed and recorded.
    // SAFETY: kill only sends a signal to the child started above.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let _ = child.wait();
    assert!(
        ehlo.contains("250-STARTTLS") || ehlo.contains("250 STARTTLS"),
        "{ehlo}"
    );
    assert!(!ehlo.contains("AUTH"), "AUTH before TLS: {ehlo}");
    assert!(plain.starts_with("220 2.0.0"), "{plain}");
    assert!(
        ehlo_tls.contains("AUTH") && !ehlo_tls.contains("STARTTLS"),
        "{ehlo_tls}"
    );
    assert!(bye.starts_with("221 "), "{bye}");
    let established = established.expect("no TLS established line");
    assert!(
        established.contains("6 octets pipelined after STARTTLS thrown away"),
        "{established}"
    );
    assert!(closed.is_some());
    let recorded: Vec<_> = std::fs::read_dir(dir.join("recorded"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(recorded.len(), 1);
    let text = std::fs::read_to_string(recorded[0].path()).unwrap();
    let t = relayguard_core::check::transcript::parse(&text).unwrap();
    let steps = text.lines().collect::<Vec<_>>();
    let at = steps.iter().position(|l| *l == "T: handshake").expect(&text);
    assert!(steps[at - 1].starts_with("S: 220 2.0.0"), "{text}");
    assert!(!t.steps.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A BDAT chunk begun over TLS and cut by the client's close_notify:
/// what the client then sends on the same socket in plain text (the rest
/// of the chunk, another transaction) was never protected, so the server
/// reads nothing after the close_notify, answers nothing in plain text,
/// and stores nothing. `complete` sends the rest over TLS instead, the
/// control that shows the checks below see a stored message.
fn cut_chunk(complete: bool) -> (Vec<u8>, Option<Vec<u8>>) {
    let config = load_config(&corpus("configs/default.toml")).unwrap();
    let (addr, _, stored) = serve(Arc::new(Policy::new(config).unwrap()), 1);
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    read_replies(&mut tcp, 1);
    tcp.write_all(b"EHLO close.example\r\n").unwrap();
    read_replies(&mut tcp, 1);
    tcp.write_all(b"STARTTLS\r\n").unwrap();
    assert!(read_replies(&mut tcp, 1).starts_with("220 2.0.0"));
    let conn = rustls::ClientConnection::new(
        tls::client_config(tls::ring()).unwrap(),
        tls::server_name("mail.example.com"),
    )
    .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"EHLO close.example\r\nMAIL FROM:<s@outside.example>\r\nRCPT TO:<alice@example.com>\r\n")
        .unwrap();
    let heard = read_replies(&mut tls, 3);
    assert!(
        heard.contains("CHUNKING") && heard.ends_with("250 2.1.5 Ok\r\n"),
        "{heard}"
    );
    let body = b"Subject: cut\r\n\r\nthe first half, ";
    let rest = b"the second half\r\n";
    let mut first = format!("BDAT {} LAST\r\n", body.len() + rest.len()).into_bytes();
    first.extend_from_slice(body);
    tls.write_all(&first).unwrap();
    let mut after = Vec::new();
    if complete {
        tls.write_all(rest).unwrap();
        tls.write_all(b"QUIT\r\n").unwrap();
        let _ = tls.read_to_end(&mut after);
    } else {
        tls.conn.send_close_notify();
        tls.flush().unwrap();
        let mut tcp = tls.sock;
        let mut plain = rest.to_vec();
        plain.extend_from_slice(b"MAIL FROM:<s@outside.example>\r\nRCPT TO:<victim@foreign.example>\r\nBDAT 5 LAST\r\nhelloQUIT\r\n");
        // The server may have closed already: a failed write is fine.
        let _ = tcp.write_all(&plain);
        let _ = tcp.read_to_end(&mut after);
    }
    // Disconnected once the session is over: nothing more can be stored.
    let body = stored.recv_timeout(Duration::from_secs(30)).ok();
    (after, body)
}

/// Whether `bytes` are whole TLS records (content type, version 3.x,
/// length) and nothing else: no plain-text reply hides among them.
fn only_tls_records(mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        if bytes.len() < 5 || !(0x14..=0x17).contains(&bytes[0]) || bytes[1] != 3 {
            return false;
        }
        let len = 5 + u16::from_be_bytes([bytes[3], bytes[4]]) as usize;
        if bytes.len() < len {
            return false;
        }
        bytes = &bytes[len..];
    }
    true
}

#[test]
fn plain_text_after_a_close_notify_inside_a_chunk_is_never_read() {
    let (after, stored) = cut_chunk(false);
    assert!(
        only_tls_records(&after),
        "plain text from the server: {:?}",
        String::from_utf8_lossy(&after)
    );
    assert_eq!(stored, None, "a message was stored");
}

#[test]
fn the_same_chunk_completed_over_tls_is_stored() {
    let (after, stored) = cut_chunk(true);
    let heard = String::from_utf8_lossy(&after);
    assert!(heard.starts_with("250 ") && heard.contains("221 "), "{heard}");
    let body = stored.expect("the message was stored");
    assert!(
        body.ends_with(b"the second half\r\n"),
        "{:?}",
        String::from_utf8_lossy(&body)
    );
}
