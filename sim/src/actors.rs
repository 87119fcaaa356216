//! The actors: the clients of the relay, each playing its role's tasks.
//!
//! Legitimate senders use core's client and retry like a real MTA, so that
//! a transient failure during the faults is not taken for a refusal; the
//! spammers send raw bytes, because an attack is precisely what a
//! well-behaved client would never send.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use relayguard_core::client::{Client, Job, MessageResult, Outcome, RcptResult};
use relayguard_core::whole_reply_len;
use relayguard_node::Clock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::options::{
    CHUNK_REPLY_WAIT, CONNECT_TIMEOUT, CUT_OVER, GIVE_UP_AT, GREETING_WAIT, PORT, SENDER_RETRY_FIRST,
    SENDER_RETRY_JITTER_MS, SENDER_RETRY_MAX, SLOW_BYTE, SLOW_SILENCE,
};
use crate::rng::Rng;
use crate::swarm::{Actor, Task};
use crate::world::{Shared, Submission, elapsed};

/// A connection to the relay, or none if the relay is down or cut off:
/// the caller decides whether that is worth a retry.
pub(crate) async fn connect(ip: IpAddr) -> Option<turmoil::net::TcpStream> {
    let addr = SocketAddr::new(ip, PORT);
    match tokio::time::timeout(CONNECT_TIMEOUT, turmoil::net::TcpStream::connect(addr)).await {
        Ok(Ok(s)) => Some(s),
        _ => None,
    }
}

/// A stream that fails a large write half way: the connection drops in the
/// middle of DATA.
struct Cut<S> {
    inner: S,
    cut: bool,
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Cut<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Cut<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        if self.cut && buf.len() > CUT_OVER {
            return std::task::Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "cut mid-DATA")));
        }
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Reads until a whole reply has arrived, the server closes, or `wait`
/// passes; `false` only if the connection is gone. The framing is core's,
/// the same the replay and remote clients use.
pub(crate) async fn await_reply(stream: &mut turmoil::net::TcpStream, wait: Duration) -> bool {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return false,
            Err(_) => return true,
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                if whole_reply_len(&got).is_some() {
                    return true;
                }
            }
        }
    }
}

/// One attempt of core's client over `stream`.
async fn submit<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: S,
    cut: bool,
    job: &Job,
) -> Outcome {
    let clock = Clock::start();
    let c = Client::new(job.clone(), clock.now());
    relayguard_node::run_client(Cut { inner: stream, cut }, c, &clock).await
}

/// One attempt of core's client over `stream`, with STARTTLS when the
/// relay offers it (core's client decides, opportunistically).
async fn submit_tls(
    stream: turmoil::net::TcpStream,
    cut: bool,
    job: &Job,
    tls: std::sync::Arc<rustls::ClientConfig>,
) -> Outcome {
    let clock = Clock::start();
    let c = Client::new(job.clone(), clock.now());
    let name = rustls::pki_types::ServerName::try_from(crate::tls::RELAY_NAME).expect("a DNS name");
    // The cut still falls in DATA: the ClientHello (236 octets) is under
    // CUT_OVER, a long body's TLS record over it.
    relayguard_node::run_client_tls(Cut { inner: stream, cut }, c, &clock, tls, name).await
}

/// Plays an actor's tasks in order. Each task registers its message as a
/// submission before the first byte is sent, so that an arrival can never
/// race ahead of the record of who sent it.
pub(crate) async fn actor(world: Shared, actor: Actor, seed: u64) -> turmoil::Result {
    let mut r = Rng::new(seed);
    // Built when first needed: most actors never do TLS.
    let mut tls = None;
    let to = actor.entry();
    // Its host is created at the step its start falls in (`run.rs`), or
    // earlier for a fault on its link.
    tokio::time::sleep(actor.start.saturating_sub(elapsed())).await;
    for task in actor.tasks {
        match task {
            Task::Send {
                id,
                job,
                legit,
                trusted,
                cut,
                starttls,
            } => {
                world.borrow_mut().submissions.insert(
                    id.clone(),
                    Submission {
                        trusted,
                        legit,
                        first_try: Some(elapsed()),
                        ..Submission::default()
                    },
                );
                let mut first = true;
                let mut wait = SENDER_RETRY_FIRST;
                loop {
                    if elapsed() > GIVE_UP_AT {
                        break;
                    }
                    let outcome = match connect(to).await {
                        None => None,
                        Some(stream) if starttls => {
                            let tls = tls.get_or_insert_with(|| world.borrow().tls.actor_client(seed));
                            let outcome = submit_tls(stream, cut && first, &job, tls.clone()).await;
                            let over_tls = outcome
                                .transcript
                                .iter()
                                .any(|(c, r)| c.starts_with(b"STARTTLS") && r.code == 220);
                            if over_tls {
                                world.borrow_mut().fired("starttls sender");
                            }
                            Some(outcome)
                        }
                        Some(stream) => Some(submit(stream, cut && first, &job).await),
                    };
                    if let Some(outcome) = outcome {
                        first = false;
                        let mut w = world.borrow_mut();
                        if outcome.transcript.iter().any(|(c, _)| c.starts_with(b"BDAT")) {
                            w.fired("client sent BDAT");
                        }
                        match &outcome.message {
                            MessageResult::Accepted(_) => {
                                let s = w.submissions.get_mut(&id).expect("registered");
                                s.acked = true;
                                s.acked_at = Some(elapsed());
                                s.accepted = outcome
                                    .recipients
                                    .iter()
                                    .filter(|(_, r)| matches!(r, RcptResult::Accepted(_)))
                                    .map(|(a, _)| a.to_ascii_lowercase())
                                    .collect();
                                w.event(&format!("{} submitted {id}", actor.ip));
                                break;
                            }
                            MessageResult::Permanent(reply) => {
                                w.submissions.get_mut(&id).expect("registered").refused =
                                    Some(reply.to_string());
                                break;
                            }
                            MessageResult::NotSent(f) => {
                                let permanent = outcome
                                    .recipients
                                    .iter()
                                    .all(|(_, r)| matches!(r, RcptResult::Permanent(_)))
                                    || matches!(f, relayguard_core::client::Failure::AuthRefused(x) | relayguard_core::client::Failure::MailRefused(x) if x.is_permanent());
                                if permanent {
                                    w.submissions.get_mut(&id).expect("registered").refused =
                                        Some(format!("{f:?}"));
                                    break;
                                }
                            }
                            MessageResult::Transient(_) => {}
                        }
                    }
                    tokio::time::sleep(wait + r.millis(0, SENDER_RETRY_JITTER_MS)).await;
                    wait = (wait * 2).min(SENDER_RETRY_MAX);
                }
            }
            Task::Raw { chunks, id, forged } => {
                if let Some(id) = id {
                    world.borrow_mut().submissions.insert(id, Submission::default());
                }
                let direct = IpAddr::V4(crate::options::RELAY);
                let Some(mut stream) = connect(if forged.is_some() { direct } else { to }).await else {
                    continue;
                };
                if let Some(header) = forged {
                    *world
                        .borrow_mut()
                        .fired
                        .entry("spammer: forged PROXY header".into())
                        .or_insert(0) += 1;
                    if stream.write_all(&header).await.is_err() {
                        continue;
                    }
                }
                if !await_reply(&mut stream, GREETING_WAIT).await {
                    continue;
                }
                if chunks.iter().any(|c| c.starts_with(b"BDAT")) {
                    world.borrow_mut().fired("spammer sent BDAT");
                }
                for c in chunks {
                    if stream.write_all(&c).await.is_err()
                        || !await_reply(&mut stream, CHUNK_REPLY_WAIT).await
                    {
                        break;
                    }
                }
            }
            Task::Flood { connections, hold } => {
                let mut held = Vec::new();
                for _ in 0..connections {
                    if let Some(s) = connect(to).await {
                        held.push(s);
                    }
                }
                tokio::time::sleep(hold).await;
                drop(held);
            }
            Task::Trickle {
                connections,
                in_data,
                rcpt,
            } => crate::hostile::trickler(to, connections, in_data, rcpt).await,
            Task::NeverRead => crate::hostile::non_reader(to).await,
            Task::Guess { tries } => {
                let tls = tls.get_or_insert_with(|| world.borrow().tls.actor_client(seed));
                crate::hostile::guesser(to, tries, tls.clone()).await
            }
            Task::Inject { injected } => {
                let tls = tls.get_or_insert_with(|| world.borrow().tls.actor_client(seed));
                crate::starttls::inject(&world, to, tls, &injected).await;
            }
            Task::Slow => {
                if let Some(mut s) = connect(to).await {
                    for &b in b"EHLO slow.example\r\n" {
                        if s.write_all(&[b]).await.is_err() {
                            break;
                        }
                        tokio::time::sleep(SLOW_BYTE).await;
                    }
                    // Then say nothing until the server gives up.
                    let mut buf = [0u8; 512];
                    while let Ok(Ok(n)) = tokio::time::timeout(SLOW_SILENCE, s.read(&mut buf)).await {
                        if n == 0 {
                            break;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}
