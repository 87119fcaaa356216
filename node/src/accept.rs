//! The accept loop: one task per connection, within the total and per-IP
//! connection limits.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use relayguard_core::check::buggify::Bug;
use relayguard_core::{Message, Peer, Session};
use tokio::io::AsyncWriteExt;

use crate::node::Node;
use crate::ports::{Entry, Mailboxes, Net, Resolver, Spool, StoreError, Tap};
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
    /// Recovers the spool, then serves until the listener fails.
    pub async fn run(self: Rc<Self>) -> io::Result<()> {
        let listener = self.net.listen(self.config.listen).await?;
        self.recover().await;
        loop {
            let (stream, peer) = self.net.accept(&listener).await?;
            tokio::task::spawn_local(self.clone().serve(stream, peer));
        }
    }

    async fn serve(self: Rc<Self>, mut stream: N::Stream, peer: IpAddr) {
        let conn = self.tap.connected(peer);
        let total = self.connections.get();
        let mine = self.per_ip.borrow().get(&peer).copied().unwrap_or(0);
        self.connections.set(total + 1);
        *self.per_ip.borrow_mut().entry(peer).or_insert(0) += 1;
        let _slot = Slot {
            total: &self.connections,
            per_ip: &self.per_ip,
            ip: peer,
        };
        let limits = &self.policy.config().limits;
        let rate_ok =
            self.anvil
                .borrow_mut()
                .connect(peer, self.clock.now(), limits.connections_per_ip_per_minute);
        if total >= self.config.max_connections || mine >= self.config.max_per_ip || !rate_ok {
            let refusal = format!(
                "421 4.7.0 {} Error: too many connections\r\n",
                self.policy.hostname()
            );
            self.tap.server_bytes(conn, refusal.as_bytes());
            let _ = stream.write_all(refusal.as_bytes()).await;
            let _ = stream.shutdown().await;
            self.tap.closed(conn);
            return;
        }
        let mut session = Session::new(self.policy.clone(), Peer { ip: peer }, self.clock.now());
        let mut hooks = Connection {
            node: &self,
            conn,
            peer,
        };
        if hooks.auth_refused() {
            session.refuse_auth();
        }
        drive_server(&mut stream, session, &self.clock, &mut hooks).await;
        self.tap.closed(conn);
    }
}

/// The node's side of one connection: the tap sees it, the spool stores its
/// messages, and each stored message starts its delivery.
struct Connection<'a, N, S, R, M, T> {
    node: &'a Rc<Node<N, S, R, M, T>>,
    conn: u64,
    peer: IpAddr,
}

impl<N: Net, S: Spool, R: Resolver, M: Mailboxes, T: Tap> ServerHooks for Connection<'_, N, S, R, M, T> {
    fn client_bytes(&mut self, bytes: &[u8]) {
        self.node.tap.client_bytes(self.conn, bytes);
    }

    fn server_bytes(&mut self, bytes: &[u8]) {
        self.node.tap.server_bytes(self.conn, bytes);
    }

    fn handed_on(&mut self, message: &Message) {
        self.node.tap.handed_on(self.conn, message);
    }

    async fn store(&mut self, message: Message) -> Result<String, StoreError> {
        let entry = Entry::new(message);
        let stored = self.node.spool.store(&entry).await;
        if let Ok(id) = &stored {
            self.node.note(&format!("stored {id}"));
            tokio::task::spawn_local(self.node.clone().deliver(id.clone(), entry));
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

    fn auth_failed(&mut self, failed: u32, in_session: u32) -> AuthThrottle {
        if self.node.bug(Bug::NoAuthThrottle) {
            return AuthThrottle::default();
        }
        let l = &self.node.policy.config().limits;
        let window = Duration::from_secs(l.auth_refusal_window_secs);
        self.node
            .anvil
            .borrow_mut()
            .auth_failed(self.peer, self.node.clock.now(), failed.into(), window);
        let pause = Duration::from_millis(l.auth_failure_delay_ms.saturating_mul(in_session.min(10).into()));
        self.note(&format!(
            "failed AUTH from {}: pause {} ms",
            self.peer,
            pause.as_millis()
        ));
        AuthThrottle {
            pause,
            refuse: self.auth_refused(),
        }
    }

    fn auth_refused(&self) -> bool {
        if self.node.bug(Bug::NoAuthThrottle) {
            return false;
        }
        let l = &self.node.policy.config().limits;
        self.node.anvil.borrow().auth_refused(
            self.peer,
            self.node.clock.now(),
            l.auth_failures_per_ip,
            Duration::from_secs(l.auth_refusal_window_secs),
        )
    }

    fn note(&mut self, what: &str) {
        self.node.note(&format!("connection {}: {what}", self.conn));
    }
}
