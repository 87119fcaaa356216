//! The accept loop: one task per connection, within the total and per-IP
//! connection limits.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::rc::Rc;

use relayguard_core::check::buggify::Bug;
use relayguard_core::{Message, Peer, Session};
use tokio::io::AsyncWriteExt;

use crate::node::Node;
use crate::ports::{Entry, Mailboxes, Net, Resolver, Spool, StoreError, Tap};
use crate::session_io::{ServerHooks, drive_server};

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
    /// Takes the spool's lock, recovers the spool, then serves until the
    /// listener fails. A spool another instance holds is an error: two
    /// instances on one spool would each deliver every message.
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
        if total >= self.config.max_connections || mine >= self.config.max_per_ip {
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
        let session = Session::new(self.policy.clone(), Peer { ip: peer }, self.clock.now());
        let mut hooks = Connection { node: &self, conn };
        drive_server(&mut stream, session, &self.clock, &mut hooks).await;
        self.tap.closed(conn);
    }
}

/// The node's side of one connection: the tap sees it, the spool stores its
/// messages, and each stored message starts its delivery.
struct Connection<'a, N, S, R, M, T> {
    node: &'a Rc<Node<N, S, R, M, T>>,
    conn: u64,
}

impl<N: Net, S: Spool, R: Resolver, M: Mailboxes, T: Tap> ServerHooks for Connection<'_, N, S, R, M, T> {
    fn client_bytes(&mut self, bytes: &[u8]) {
        self.node.tap.client_bytes(self.conn, bytes);
    }

    fn server_bytes(&mut self, bytes: &[u8]) {
        self.node.tap.server_bytes(self.conn, bytes);
    }

    async fn store(&mut self, message: Message) -> Result<String, StoreError> {
        let entry = Entry::new(message);
        let stored = self.node.spool.store(&entry).await;
        if let Ok(id) = &stored {
            // The tap hears of the message once it is stored: one the spool
            // refused was answered 451 and is not the relay's to deliver.
            self.node.tap.handed_on(self.conn, &entry.message);
            self.node.note(&format!("stored {id}"));
            tokio::task::spawn_local(self.node.clone().deliver(id.clone(), entry));
        }
        stored
    }

    fn ack_before_store(&self) -> bool {
        self.node.bug(Bug::AckBeforeStore)
    }
}
