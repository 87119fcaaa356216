//! The session driver's STARTTLS: the handshake runs under the command
//! deadline, the deadlines keep working over TLS, and a client that sends
//! anything but a ClientHello after the `220` is closed unanswered. The
//! outbound client's: STARTTLS when the exchanger offers it and a client
//! configuration is given, and a failed handshake sends nothing of the
//! message. On tokio's paused clock, over in-memory streams, with
//! certificates made by rcgen.

use std::sync::Arc;
use std::time::Duration;

use relayguard_core::client::{Client, Failure, Job, MessageResult, Outcome, TlsMode};
use relayguard_core::{Config, Message, Peer, Policy, Session};
use relayguard_node::{Clock, ServerHooks, StoreError, drive_server, run_client, run_client_tls, tls};
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
    while let Ok(1) = r.read(&mut b).await {
        got.push(b[0]);
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

/// The exchanger's side for the outbound tests: TLS offered with `tls`,
/// and how many messages it stored over TLS and in plain text.
struct Exchanger {
    hooks: Hooks,
    over_tls: usize,
    plain: usize,
}

impl ServerHooks for Exchanger {
    async fn store(&mut self, _message: Message) -> Result<String, StoreError> {
        match self.hooks.injected {
            Some(_) => self.over_tls += 1,
            None => self.plain += 1,
        }
        Ok("x".into())
    }
    fn note(&mut self, what: &str) {
        self.hooks.note(what);
    }
    fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.hooks.tls()
    }
    fn tls_established(&mut self, injected: u64) {
        self.hooks.tls_established(injected);
    }
}

fn job() -> Job {
    Job {
        helo: "relay.example".into(),
        auth: None,
        mail_from: "a@relay.example".into(),
        rcpt_to: vec!["alice@example.com".into()],
        body: b"Subject: hi\r\n\r\nover TLS or not\r\n".to_vec(),
        timeout: Duration::from_secs(60),
        tls: TlsMode::Opportunistic,
        chunking: false,
    }
}

/// Delivers `job()` to an exchanger offering TLS with `hooks`; the client
/// does TLS with `client` if given (else `run_client`, in plain text).
async fn deliver(hooks: Hooks, client: Option<Arc<rustls::ClientConfig>>) -> (Outcome, Exchanger) {
    let (server, to_server) = tokio::io::duplex(1 << 16);
    let clock = Clock::start();
    let mut ex = Exchanger {
        hooks,
        over_tls: 0,
        plain: 0,
    };
    let serving = drive_server(server, session(&clock), &clock, &mut ex);
    let c = Client::new(job(), clock.now());
    let sending = async {
        match client {
            Some(config) => {
                run_client_tls(to_server, c, &clock, config, tls::server_name("mx.example.com")).await
            }
            None => run_client(to_server, c, &clock).await,
        }
    };
    let ((), outcome) =
        tokio::time::timeout(Duration::from_secs(600), async { tokio::join!(serving, sending) })
            .await
            .expect("the delivery did not end");
    (outcome, ex)
}

#[tokio::test(start_paused = true)]
async fn outbound_delivery_uses_starttls_when_the_exchanger_offers_it() {
    let (outcome, ex) = deliver(hooks(), Some(tls::client_config(tls::ring()).unwrap())).await;
    assert!(
        matches!(outcome.message, MessageResult::Accepted(_)),
        "{:?}",
        outcome.message
    );
    assert_eq!((ex.over_tls, ex.plain), (1, 0));
    let sent: Vec<String> = outcome
        .transcript
        .iter()
        .map(|(c, _)| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert!(sent.iter().any(|c| c == "STARTTLS\r\n"), "{sent:?}");
}

#[tokio::test(start_paused = true)]
async fn outbound_delivery_without_a_client_config_stays_in_plain_text() {
    let (outcome, ex) = deliver(hooks(), None).await;
    assert!(
        matches!(outcome.message, MessageResult::Accepted(_)),
        "{:?}",
        outcome.message
    );
    assert_eq!((ex.over_tls, ex.plain), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn a_failed_outbound_handshake_sends_nothing_of_the_message() {
    // The exchanger speaks TLS 1.2 only, the client 1.3 only: no handshake.
    let c = rcgen::generate_simple_self_signed(vec!["mx.example.com".into()]).unwrap();
    let key = PrivateKeyDer::try_from(c.key_pair.serialize_der()).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(tls::ring())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![c.cert.der().clone()], key)
        .unwrap();
    let mut h = hooks();
    h.tls = Arc::new(server);
    let only13 = tls::client_config_with_versions(tls::ring(), &[&rustls::version::TLS13]).unwrap();
    let (outcome, ex) = deliver(h, Some(only13)).await;
    assert!(
        matches!(outcome.message, MessageResult::NotSent(Failure::Closed)),
        "{:?}",
        outcome.message
    );
    assert_eq!((ex.over_tls, ex.plain), (0, 0));
    assert!(
        ex.hooks.notes.iter().any(|n| n.contains("TLS handshake failed")),
        "{:?}",
        ex.hooks.notes
    );
}
