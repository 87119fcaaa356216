//! The session driver's STARTTLS: the handshake runs under the command
//! deadline, the deadlines keep working over TLS, and a client that sends
//! anything but a ClientHello after the `220` is closed unanswered. On
//! tokio's paused clock, over an in-memory stream, with a certificate made
//! by rcgen.

use std::sync::Arc;
use std::time::Duration;

use relayguard_core::{Config, Message, Peer, Policy, Session};
use relayguard_node::{Clock, ServerHooks, StoreError, drive_server, tls};
use rustls::pki_types::PrivateKeyDer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// Acks every message, offers TLS, and keeps its notes.
struct Hooks {
    tls: Arc<rustls::ServerConfig>,
    notes: Vec<String>,
    injected: Option<u64>,
}

impl ServerHooks for Hooks {
    async fn store(&mut self, _message: Message) -> Result<String, StoreError> {
        Ok("t".into())
    }
    fn note(&mut self, what: &str) {
        self.notes.push(what.to_string());
    }
    fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        Some(self.tls.clone())
    }
    fn tls_established(&mut self, injected: u64) {
        self.injected = Some(injected);
    }
}

fn hooks() -> Hooks {
    let c = rcgen::generate_simple_self_signed(vec!["mail.example.com".into()]).unwrap();
    let key = PrivateKeyDer::try_from(c.key_pair.serialize_der()).unwrap();
    Hooks {
        tls: tls::server_config(tls::ring(), vec![c.cert.der().clone()], key).unwrap(),
        notes: Vec::new(),
        injected: None,
    }
}

fn session(clock: &Clock) -> Session {
    let text = format!(
        "hostname = \"mail.example.com\"\n[domains]\nlocal = [\"example.com\"]\n[limits]\ncommand_timeout_secs = {}\n",
        COMMAND_TIMEOUT.as_secs()
    );
    let policy = Arc::new(Policy::new(Config::from_toml(&text).unwrap()).unwrap());
    let mut s = Session::new(policy, Peer::direct("203.0.113.7".parse().unwrap()), clock.now());
    s.offer_tls();
    s
}

/// Reads until a whole final reply line (`ddd ` ... CRLF) is in.
async fn reply(r: &mut (impl AsyncRead + Unpin)) -> String {
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match r.read(&mut b).await {
            Ok(1) => got.push(b[0]),
            _ => break,
        }
        if got.ends_with(b"\r\n") {
            let text = String::from_utf8_lossy(&got).into_owned();
            let last = text.trim_end().rsplit("\r\n").next().unwrap_or("").to_string();
            if last.as_bytes().get(3) == Some(&b' ') {
                return text;
            }
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Greeting, EHLO, `STARTTLS` (plus `extra` in the same write), the 220.
async fn up_to_starttls(c: &mut DuplexStream, extra: &[u8]) {
    assert!(reply(c).await.starts_with("220 "));
    c.write_all(b"EHLO client.example\r\n").await.unwrap();
    assert!(reply(c).await.contains("STARTTLS"));
    c.write_all(&[&b"STARTTLS\r\n"[..], extra].concat())
        .await
        .unwrap();
    assert!(reply(c).await.starts_with("220 2.0.0"));
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_handshakes_is_closed_at_the_command_deadline() {
    let (server, mut client) = tokio::io::duplex(1 << 16);
    let clock = Clock::start();
    let mut h = hooks();
    let start = Instant::now();
    let serving = drive_server(server, session(&clock), &clock, &mut h);
    let talking = async {
        up_to_starttls(&mut client, b"").await;
        // No ClientHello: the handshake waits.
        std::future::pending::<()>().await
    };
    let ended = tokio::time::timeout(COMMAND_TIMEOUT * 2, async {
        tokio::select! {
            _ = serving => {}
            _ = talking => {}
        }
    })
    .await;
    assert!(ended.is_ok(), "the handshake waited past the command deadline");
    assert!(start.elapsed() >= COMMAND_TIMEOUT, "{:?}", start.elapsed());
    assert!(
        h.notes
            .iter()
            .any(|n| n.contains("not done by the command deadline")),
        "{:?}",
        h.notes
    );
}

#[tokio::test(start_paused = true)]
async fn over_tls_a_silent_client_hears_421_at_the_command_deadline() {
    let (server, mut client) = tokio::io::duplex(1 << 16);
    let clock = Clock::start();
    let mut h = hooks();
    let serving = drive_server(server, session(&clock), &clock, &mut h);
    let talking = async {
        up_to_starttls(&mut client, b"").await;
        let connector = tls::TlsConnector::from(tls::client_config(tls::ring()).unwrap());
        let mut t = connector
            .connect(tls::server_name("mail.example.com"), client)
            .await
            .unwrap();
        t.write_all(b"EHLO client.example\r\n").await.unwrap();
        let ehlo = reply(&mut t).await;
        let after = Instant::now();
        // Silent: the session's command deadline must close it, over TLS.
        let bye = reply(&mut t).await;
        (ehlo, bye, after.elapsed())
    };
    let ((), (ehlo, bye, waited)) =
        tokio::time::timeout(COMMAND_TIMEOUT * 2, async { tokio::join!(serving, talking) })
            .await
            .expect("the command deadline did not fire over TLS");
    assert!(ehlo.starts_with("250-") && !ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(bye.starts_with("421 4.4.2"), "{bye}");
    assert!(waited >= COMMAND_TIMEOUT, "{waited:?}");
    assert_eq!(h.injected, Some(0));
}

#[tokio::test(start_paused = true)]
async fn plain_text_instead_of_a_client_hello_fails_the_handshake_and_closes() {
    let (server, mut client) = tokio::io::duplex(1 << 16);
    let clock = Clock::start();
    let mut h = hooks();
    let serving = drive_server(server, session(&clock), &clock, &mut h);
    let talking = async {
        up_to_starttls(&mut client, b"").await;
        // After the 220, in its own write: rustls reads it as the hello.
        client
            .write_all(b"MAIL FROM:<s@outside.example>\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest).await;
        rest
    };
    let ((), rest) = tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(serving, talking) })
        .await
        .expect("a failed handshake did not close");
    // At most a TLS alert record (content type 21), never an SMTP reply.
    assert!(
        rest.is_empty() || rest[0] == 21,
        "{:?}",
        String::from_utf8_lossy(&rest)
    );
    assert!(
        h.notes.iter().any(|n| n.contains("TLS handshake failed")),
        "{:?}",
        h.notes
    );
    assert_eq!(h.injected, None);
}

#[tokio::test(start_paused = true)]
async fn octets_pipelined_after_starttls_are_counted_and_never_answered() {
    let (server, mut client) = tokio::io::duplex(1 << 16);
    let clock = Clock::start();
    let mut h = hooks();
    let injected = b"MAIL FROM:<s@outside.example>\r\nRCPT TO:<a@example.com>\r\n";
    let serving = drive_server(server, session(&clock), &clock, &mut h);
    let talking = async {
        up_to_starttls(&mut client, injected).await;
        let connector = tls::TlsConnector::from(tls::client_config(tls::ring()).unwrap());
        let mut t = connector
            .connect(tls::server_name("mail.example.com"), client)
            .await
            .unwrap();
        t.write_all(b"QUIT\r\n").await.unwrap();
        let mut rest = Vec::new();
        let _ = t.read_to_end(&mut rest).await;
        String::from_utf8_lossy(&rest).into_owned()
    };
    let ((), rest) = tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(serving, talking) })
        .await
        .expect("the session did not end");
    assert!(
        rest.starts_with("221 ") && rest.matches("\r\n").count() == 1,
        "{rest}"
    );
    assert_eq!(h.injected, Some(injected.len() as u64));
}
