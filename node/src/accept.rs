//! The accept loop: one task per connection, within the total and per-IP
//! connection limits. When `accept` fails for want of descriptors, buffers
//! or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM; any error that is not about
//! the one connection being accepted) the loop waits, doubling the wait up
//! to a cap, and says so once per episode, instead of trying again at full
//! rate with a log line each time.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use relayguard_core::Destination;
use relayguard_core::check::buggify::Bug;
use relayguard_core::proxy::{self, Front};
use relayguard_core::{Message, Peer, Session};
use tokio::io::AsyncWriteExt;

use crate::node::Node;
use crate::ports::{Entry, Mailboxes, Net, Resolver, Spool, StoreError, Tap};
use crate::proxy_header::{read_any_header, read_header};
use crate::session_io::{AuthThrottle, ServerHooks, drive_server};

/// Releases a connection's slot, however its task ends.
struct Slot<'a> {
    total: &'a Cell<usize>,
    per_ip: &'a RefCell<BTreeMap<IpAddr, usize>>,
    ip: IpAddr,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.total.set(self.total.get() - 1);
        let mut m = self.per_ip.borrow_mut();
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl<N: Net, S: Spool, R: Resolver, M: Mailboxes, T: Tap> Node<N, S, R, M, T> {
    /// Takes the spool's lock, recovers the spool, then serves; fails only
    /// if the spool is held by another instance or it cannot listen. A
    /// second instance on one spool would deliver every message again.
    /// Errors of `accept` are waited out (see [`AcceptBackoff`]).
    pub async fn run(self: Rc<Self>) -> io::Result<()> {
        if self.bug(Bug::NoSpoolLock) {
            // BUG no-spool-lock: a second instance starts beside the first
        } else if let Err(e) = self.spool.lock().await {
            self.note(&format!("refusing to start: {e}"));
            return Err(io::Error::new(io::ErrorKind::WouldBlock, e));
        }
        let listener = self.net.listen(self.config.listen).await?;
        // Before the first accept: a message stored while recovery lists
        // the queue would be recovered as well as delivered, twice.
        self.recover().await;
        let mut backoff = AcceptBackoff::default();
        loop {
            match self.net.accept(&listener).await {
                Ok((stream, peer)) => {
                    if let Some(episode) = backoff.accepted(&self.config) {
                        self.note(&episode);
                    }
                    tokio::task::spawn_local(self.clone().serve(stream, peer));
                }
                // That one client went away before it was accepted: the
                // next one may be fine.
                Err(e) if per_connection(&e) => tokio::task::yield_now().await,
                Err(e) => {
                    let (wait, first) = backoff.failed(&self.config);
                    if first {
                        self.note(&format!(
                            "accept: {e}; waiting, from {wait:?} doubling up to {:?}, until it works again",
                            self.config.accept_backoff_max
                        ));
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn serve(self: Rc<Self>, mut stream: N::Stream, socket: IpAddr) {
        let conn = self.tap.connected(socket);
        // Who the client is: the socket's peer, or the client a trusted
        // proxy's header names. The limits below count the client, so that
        // the clients behind one proxy do not share one address's budget.
        let (peer, early) = match proxy::front(&self.policy, socket) {
            Front::Direct | Front::Refuse(_) if self.bug(Bug::TrustAnyProxyHeader) => {
                // BUG trust-any-proxy-header: a header that comes first is believed from anyone.
                let (peer, early) = read_any_header(&mut stream, socket).await;
                if peer.via.is_some() {
                    self.tap.proxied(conn, peer.ip);
                }
                (peer, early)
            }
            Front::Direct => (Peer::direct(socket), Vec::new()),
            Front::Refuse(reply) => return self.refuse(&mut stream, conn, &reply).await,
            Front::ExpectHeader => match read_header(&mut stream, &self.policy, socket).await {
                Ok((peer, early)) => {
                    self.tap.proxied(conn, peer.ip);
                    (peer, early)
                }
                Err(reply) => return self.refuse(&mut stream, conn, &reply).await,
            },
        };
        let ip = peer.ip;
        let total = self.connections.get();
        let mine = self.per_ip.borrow().get(&ip).copied().unwrap_or(0);
        self.connections.set(total + 1);
        *self.per_ip.borrow_mut().entry(ip).or_insert(0) += 1;
        let _slot = Slot {
            total: &self.connections,
            per_ip: &self.per_ip,
            ip,
        };
        let limits = &self.policy.config().limits;
        // An XCLIENT proxy's connections carry many clients, named only
        // after the session began: counted by its address, one flood behind
        // it would shut out every client behind it. Its address is exempt
        // from the per-address limits (as Postfix's
        // smtpd_client_event_limit_exceptions); the total still applies.
        let xclient_proxy =
            peer.via.is_none() && self.policy.config().proxy.xclient && self.policy.is_trusted_proxy(socket);
        let rate_ok = xclient_proxy
            || self
                .anvil
                .borrow_mut()
                .connect(ip, self.clock.now(), limits.connections_per_ip_per_minute);
        let per_ip_ok = xclient_proxy || mine < self.config.max_per_ip;
        if total >= self.config.max_connections || !per_ip_ok || !rate_ok {
            let refusal = format!(
                "421 4.7.0 {} Error: too many connections\r\n",
                self.policy.hostname()
            );
            return self.refuse(&mut stream, conn, refusal.as_bytes()).await;
        }
        let mut session = Session::new(self.policy.clone(), peer, self.clock.now());
        let mut hooks = Connection {
            node: &self,
            conn,
            body: None,
            held: Vec::new(),
        };
        if hooks.auth_refused(ip) {
            session.refuse_auth();
        }
        if self.config.tls_server.is_some() {
            session.offer_tls();
        }
        if !early.is_empty() {
            // SMTP that came with the header, in the same reads.
            hooks.client_bytes(&early);
            session.handle_input(self.clock.now(), &early);
        }
        drive_server(&mut stream, session, &self.clock, &mut hooks).await;
        self.tap.closed(conn);
    }

    /// Sends `reply` and closes, before any session was started.
    async fn refuse(&self, stream: &mut N::Stream, conn: u64, reply: &[u8]) {
        self.tap.server_bytes(conn, reply);
        let _ = stream.write_all(reply).await;
        let _ = stream.shutdown().await;
        self.tap.closed(conn);
    }
}

/// An error of `accept` about the one connection being accepted, not about
/// the server: try the next at once.
fn per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// The accept loop's wait after failures that are about the server (no
/// descriptor left, no buffer, no memory): `accept_backoff_base`, doubled
/// after each further failure up to `accept_backoff_max`, and back to the
/// base once a connection is accepted. An episode starts with the first
/// failure and ends with the first connection accepted after ten times
/// `accept_backoff_max` without a failure; it is logged when it starts and
/// when it ends, not at every try, so that descriptors freed and used up
/// again at once (a churn of failures and accepts) stay one episode.
#[derive(Debug, Default)]
struct AcceptBackoff {
    /// Failures since the last accepted connection: the wait's exponent.
    streak: u32,
    /// The episode under way: when it started, failures and time waited.
    episode: Option<Episode>,
}

#[derive(Debug)]
struct Episode {
    failures: u32,
    waited: std::time::Duration,
    last_failure: tokio::time::Instant,
}

impl AcceptBackoff {
    /// One more failure: how long to wait, and whether it starts an episode.
    fn failed(&mut self, config: &crate::NodeConfig) -> (std::time::Duration, bool) {
        let wait = config
            .accept_backoff_base
            .saturating_mul(1 << self.streak.min(20))
            .min(config.accept_backoff_max);
        self.streak += 1;
        let now = tokio::time::Instant::now();
        let first = self.episode.is_none();
        let e = self.episode.get_or_insert(Episode {
            failures: 0,
            waited: std::time::Duration::ZERO,
            last_failure: now,
        });
        e.failures += 1;
        e.waited += wait;
        e.last_failure = now;
        (wait, first)
    }

    /// A connection was accepted: the line that ends the episode, if one
    /// was under way and has been quiet long enough.
    fn accepted(&mut self, config: &crate::NodeConfig) -> Option<String> {
        self.streak = 0;
        let quiet = config.accept_backoff_max.saturating_mul(10);
        let e = self.episode.as_ref()?;
        if e.last_failure.elapsed() < quiet {
            return None;
        }
        let e = self.episode.take()?;
        Some(format!(
            "accept: working again after {} failed tries and {:?} of waiting",
            e.failures, e.waited
        ))
    }
}

/// The node's side of one connection: the tap sees it, the spool stores its
/// messages as their bodies arrive, and each stored message starts its
/// delivery.
struct Connection<'a, N, S: Spool, R, M, T> {
    node: &'a Rc<Node<N, S, R, M, T>>,
    conn: u64,
    /// The spool file of the message being received, or why it failed
    /// (the client hears `451` at the end of the data).
    body: Option<Result<S::Writer, StoreError>>,
    /// The body so far while it fits in `held_body_max` (no spool file
    /// yet).
    held: Vec<u8>,
}

impl<N: Net, S: Spool, R: Resolver, M: Mailboxes, T: Tap> Connection<'_, N, S, R, M, T> {
    /// Stores a message whose body is in memory. When every recipient is
    /// local it goes into the mailboxes now, before the reply: the one
    /// durable write it needs, where queueing would write, fsync and later
    /// remove a queue file as well. Recipients whose delivery failed are
    /// queued as any message (their round retries or bounces them); the
    /// entry's `pending` says which are left.
    async fn store_held(&self, entry: &mut Entry) -> Result<String, StoreError> {
        let node = self.node;
        let local: Option<Vec<String>> = entry
            .pending
            .iter()
            .map(|r| match &r.destination {
                Destination::Local { mailbox } => Some(mailbox.clone()),
                _ => None,
            })
            .collect();
        let (Some(mailboxes), Some(id)) = (local, node.spool.fresh_id()) else {
            return node.spool.store(entry).await;
        };
        let results = node
            .mailboxes
            .deliver_before_reply(&mailboxes, &id, &entry.message)
            .await;
        let mut results = results.into_iter();
        let mut left = Vec::new();
        for (r, mailbox) in entry.pending.drain(..).zip(&mailboxes) {
            match results.next() {
                Some(Ok(())) => node.note(&format!("delivered {id} local {mailbox} before the reply")),
                // BUG drop-failed-early-delivery: the failed recipient is neither delivered nor queued
                Some(Err(_)) if node.bug(Bug::DropFailedEarlyDelivery) => {}
                Some(Err(e)) => {
                    node.note(&format!("deferred {id} {}: {e}", r.path));
                    left.push(r);
                }
                // A result short: not known to be delivered, so queued.
                None => left.push(r),
            }
        }
        entry.pending = left;
        if entry.pending.is_empty() {
            return Ok(id);
        }
        node.spool.store(entry).await
    }
}

impl<N: Net, S: Spool, R: Resolver, M: Mailboxes, T: Tap> ServerHooks for Connection<'_, N, S, R, M, T> {
    fn client_bytes(&mut self, bytes: &[u8]) {
        self.node.tap.client_bytes(self.conn, bytes);
    }

    fn server_bytes(&mut self, bytes: &[u8]) {
        self.node.tap.server_bytes(self.conn, bytes);
    }

    fn streams_bodies(&self) -> bool {
        true
    }

    async fn body_piece(&mut self, piece: Vec<u8>) {
        self.node.tap.body_piece(self.conn, &piece);
        if self.body.is_none() && self.held.len() + piece.len() <= self.node.config.held_body_max {
            self.held.extend_from_slice(&piece);
            return;
        }
        // Too large to hold: what was held goes first, in the same write.
        let piece = if self.held.is_empty() {
            piece
        } else {
            let mut all = std::mem::take(&mut self.held);
            all.extend_from_slice(&piece);
            all
        };
        let spool = &self.node.spool;
        let writer = match self.body.take() {
            Some(w) => w,
            None => spool.begin().await,
        };
        self.body = Some(match writer {
            Ok(mut w) => match spool.append(&mut w, piece).await {
                Ok(()) => Ok(w),
                Err(e) => {
                    spool.abort(w).await;
                    Err(e)
                }
            },
            Err(e) => Err(e),
        });
    }

    async fn drop_body(&mut self) {
        self.held.clear();
        if let Some(Ok(w)) = self.body.take() {
            self.node.spool.abort(w).await;
        }
        self.node.tap.body_dropped(self.conn);
    }

    async fn store(&mut self, message: Message) -> Result<String, StoreError> {
        let mut entry = Entry::new(message);
        let stored = match self.body.take() {
            // The whole body is held (or none came).
            None => {
                entry.message.body = std::mem::take(&mut self.held);
                self.store_held(&mut entry).await
            }
            Some(Ok(w)) => self.node.spool.commit(w, &entry).await,
            Some(Err(e)) => Err(e),
        };
        if let Ok(id) = &stored {
            // The tap hears of the message once it is stored: one the spool
            // refused was answered 451 and is not the relay's to deliver.
            self.node.tap.handed_on(self.conn, &entry.message);
            if entry.pending.is_empty() {
                self.node.note(&format!("done {id}: delivered before the reply"));
            } else {
                self.node.note(&format!("stored {id}"));
                tokio::task::spawn_local(self.node.clone().deliver(id.clone(), entry));
            }
        } else {
            self.node.tap.body_dropped(self.conn);
        }
        stored
    }

    fn ack_before_store(&self) -> bool {
        self.node.bug(Bug::AckBeforeStore)
    }

    fn write_timeout(&self) -> Option<Duration> {
        // BUG no-write-timeout: a client that never reads holds its session.
        let secs = self.node.policy.config().limits.command_timeout_secs;
        (!self.node.bug(Bug::NoWriteTimeout)).then(|| Duration::from_secs(secs))
    }

    fn error_delay(&self) -> Duration {
        Duration::from_millis(self.node.policy.config().limits.error_delay_ms)
    }

    fn auth_failed(&mut self, client: IpAddr, failed: u32, in_session: u32) -> AuthThrottle {
        if self.node.bug(Bug::NoAuthThrottle) {
            return AuthThrottle::default();
        }
        let l = &self.node.policy.config().limits;
        let window = Duration::from_secs(l.auth_refusal_window_secs);
        self.node
            .anvil
            .borrow_mut()
            .auth_failed(client, self.node.clock.now(), failed.into(), window);
        let pause = Duration::from_millis(l.auth_failure_delay_ms.saturating_mul(in_session.min(10).into()));
        self.note(&format!(
            "failed AUTH from {client}: pause {} ms",
            pause.as_millis()
        ));
        AuthThrottle {
            pause,
            refuse: self.auth_refused(client),
        }
    }

    fn auth_refused(&self, client: IpAddr) -> bool {
        if self.node.bug(Bug::NoAuthThrottle) {
            return false;
        }
        let l = &self.node.policy.config().limits;
        self.node.anvil.borrow().auth_refused(
            client,
            self.node.clock.now(),
            l.auth_failures_per_ip,
            Duration::from_secs(l.auth_refusal_window_secs),
        )
    }

    fn note(&mut self, what: &str) {
        self.node.note(&format!("connection {}: {what}", self.conn));
    }

    fn tls(&self) -> Option<std::sync::Arc<rustls::ServerConfig>> {
        self.node.config.tls_server.clone()
    }

    fn tls_established(&mut self, injected: u64) {
        self.node.tap.tls_established(self.conn, injected);
    }
}
