//! The relay's backends in the simulation: the node runs its real code
//! against these instead of sockets, a disk, DNS and Maildir.
//!
//! Each one is as simple as the node's contract allows and no simpler; the
//! tap is where the wire checker and the trace see every byte. The spool
//! and the mailboxes, which behave as a file system, are in `disk.rs`.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};

use relayguard_core::Domain;
use relayguard_core::Message;
use relayguard_node::{Net, Resolver, Tap};

use crate::checkers;
use crate::options::{FOREIGN, PORT};
use crate::rng::{FNV0, fnv};
use crate::world::Shared;

/// The node's tap: every session's bytes go to the trace hash and to the
/// session's wire checker.
#[derive(Clone)]
pub(crate) struct SimTap(pub(crate) Shared);

impl Tap for SimTap {
    fn connected(&self, peer: IpAddr) -> u64 {
        let mut w = self.0.borrow_mut();
        w.next_conn += 1;
        let conn = w.next_conn;
        w.stats.sessions += 1;
        // The accept this connection came from: the first from its peer
        // (connections are told in the order they were accepted).
        let socket = w
            .accepted
            .iter()
            .position(|a| a.ip() == peer)
            .and_then(|i| w.accepted.remove(i));
        let watch = checkers::wire::Watch::new(&w.config, peer, socket);
        w.watches.insert(conn, watch);
        checkers::hostile::connected(&mut w, conn, peer);
        w.event(&format!("connect {conn} from {peer}"));
        conn
    }
    fn proxied(&self, conn: u64, client: IpAddr) {
        let mut w = self.0.borrow_mut();
        w.event(&format!("proxied {conn} for {client}"));
        let config = w.config.clone();
        if let Some(x) = w.watches.get_mut(&conn) {
            // The oracle reads proxy.trusted itself: a header from an
            // address it does not trust leaves the session judged as the
            // socket's own.
            x.oracle = relayguard_core::check::oracle::Oracle::with_socket(&config, client, x.peer);
            x.recorder.proxied(client, x.peer);
            x.named = Some(client);
        }
    }
    fn client_bytes(&self, conn: u64, bytes: &[u8]) {
        let mut w = self.0.borrow_mut();
        w.hash = fnv(w.hash, bytes);
        checkers::wire::judge_by_truth(&mut w, conn);
        if let Some(x) = w.watches.get_mut(&conn) {
            x.oracle.client_bytes(bytes);
            x.recorder.client(bytes);
        }
        checkers::hostile::client_bytes(&mut w, conn, bytes);
    }
    fn server_bytes(&self, conn: u64, bytes: &[u8]) {
        let mut w = self.0.borrow_mut();
        let codes: Vec<String> = bytes
            .split(|&b| b == b'\n')
            .filter(|l| l.len() >= 4 && l[3] != b'-')
            .map(|l| String::from_utf8_lossy(&l[..3]).into_owned())
            .collect();
        w.event(&format!("reply {conn} {}", codes.join(",")));
        if let Some(x) = w.watches.get_mut(&conn) {
            x.oracle.server_bytes(bytes);
            x.recorder.server(bytes);
            if !x.client_spoke {
                x.early.extend_from_slice(bytes);
            }
        }
        checkers::hostile::server_bytes(&mut w, conn, bytes);
    }
    fn body_piece(&self, conn: u64, piece: &[u8]) {
        if let Some(x) = self.0.borrow_mut().watches.get_mut(&conn) {
            x.body.extend_from_slice(piece);
        }
    }
    fn body_dropped(&self, conn: u64) {
        if let Some(x) = self.0.borrow_mut().watches.get_mut(&conn) {
            x.body = Vec::new();
        }
    }
    fn handed_on(&self, conn: u64, message: &Message) {
        let mut w = self.0.borrow_mut();
        w.stats.messages += 1;
        // The body came in pieces before the envelope.
        let mut whole = message.clone();
        if let Some(x) = w.watches.get_mut(&conn) {
            whole.body = std::mem::take(&mut x.body);
        }
        let message = &whole;
        let corpus = w.client_of(conn).is_some_and(|c| w.corpus_ips.contains(&c));
        if corpus {
            let h = fnv(FNV0, &message.body);
            w.corpus_bodies.insert(h);
        }
        if let Some(x) = w.watches.get_mut(&conn) {
            x.oracle.handed_on(message);
        }
    }
    /// The oracle drops the client's plain-text octets after STARTTLS here,
    /// as the relay must: a reply to them from now on is an injection.
    fn tls_established(&self, conn: u64, injected: u64) {
        let mut w = self.0.borrow_mut();
        w.fired("starttls handshake");
        if injected > 0 {
            w.fired("starttls octets discarded");
        }
        w.event(&format!("tls {conn} injected {injected}"));
        if let Some(x) = w.watches.get_mut(&conn) {
            x.oracle.tls_established();
            x.recorder.tls_established();
        }
    }
    fn closed(&self, conn: u64) {
        let mut w = self.0.borrow_mut();
        w.event(&format!("close {conn}"));
        checkers::wire::finish(&mut w, conn);
        checkers::hostile::closed(&mut w, conn);
    }
    fn event(&self, what: &str) {
        let mut w = self.0.borrow_mut();
        w.event(what);
        // What the at-least-once window needs to know (disk.rs): a queue
        // id delivered and not yet written back, and a round deferred
        // after an exchanger may have taken the message. A message
        // delivered before its reply has no queue file to write back.
        let mut words = what.split(' ');
        match (words.next(), words.next()) {
            (Some("delivered"), Some(qid)) if w.spool.queue.contains_key(qid) => {
                w.unrecorded.insert(qid.to_string());
            }
            (Some("deferred"), Some(qid)) => {
                let sid = w
                    .spool
                    .queue
                    .get(qid)
                    .and_then(|f| f.entry.as_ref())
                    .and_then(|e| crate::world::sim_id(&e.message.body));
                if let Some(sid) = sid {
                    if w.arrivals.iter().any(|a| a.id.as_deref() == Some(sid.as_str())) {
                        *w.excused.entry(sid).or_insert(0) += 1;
                    }
                }
            }
            _ => {}
        }
    }
}

/// Turmoil's TCP, which the partitions, holds and latencies act on. Each
/// accepted peer, port included, goes to the world for the tap.
pub(crate) struct TurmoilNet(pub(crate) Shared);

impl Net for TurmoilNet {
    type Stream = Wire;
    type Listener = turmoil::net::TcpListener;
    async fn listen(&self, addr: SocketAddr) -> io::Result<Self::Listener> {
        turmoil::net::TcpListener::bind(addr).await
    }
    async fn accept(&self, l: &Self::Listener) -> io::Result<(Self::Stream, IpAddr)> {
        let (s, a) = l.accept().await?;
        self.0.borrow_mut().accepted.push_back(a);
        let wire = Wire {
            inner: s,
            world: self.0.clone(),
            _awake: None,
        };
        Ok((wire, a.ip()))
    }
    /// A sleeping exchanger is woken first (`naps.rs`), and kept awake
    /// while the connection lives.
    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Stream> {
        let awake = crate::naps::wake(&self.0, addr.ip()).await;
        turmoil::net::TcpStream::connect(addr).await.map(|s| Wire {
            inner: s,
            world: self.0.clone(),
            _awake: awake,
        })
    }
}

/// One of the relay's connections, every octet of which, each way, goes
/// into the trace hash as it passed on the wire: the tap sees a TLS
/// session's plain text, this its records, so that a handshake drawing
/// anything but the seed's randomness changes the hash.
pub(crate) struct Wire {
    inner: turmoil::net::TcpStream,
    world: Shared,
    _awake: Option<crate::naps::Busy>,
}

impl Wire {
    fn hash(&self, bytes: &[u8]) {
        let mut w = self.world.borrow_mut();
        w.hash = fnv(w.hash, bytes);
    }
}

impl tokio::io::AsyncRead for Wire {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        self.hash(&buf.filled()[before..]);
        r
    }
}

impl tokio::io::AsyncWrite for Wire {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = r {
            self.hash(&buf[..n]);
        }
        r
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

/// Every foreign domain has one exchanger; a name the swarm does not know
/// resolves to the first, so that a generated address always goes
/// somewhere a checker watches.
pub(crate) struct SimResolver(pub(crate) BTreeMap<String, IpAddr>);

impl Resolver for SimResolver {
    async fn resolve(&self, domain: &Domain) -> Vec<SocketAddr> {
        let ip = match domain {
            Domain::Name(n) => Some(*self.0.get(n).unwrap_or(&self.0[FOREIGN[0]])),
            Domain::Literal(ip) => self.0.values().find(|x| *x == ip).copied(),
        };
        ip.map(|ip| SocketAddr::new(ip, PORT)).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeSet;
    use std::rc::Rc;

    use relayguard_core::Config;
    use relayguard_node::Tap;

    use super::SimTap;
    use crate::disk::QueueFile;
    use crate::world::World;

    /// "Delivered, not yet written back" (what the crash after a delivery
    /// waits for) is about queue files: a message delivered before its
    /// reply has none, and must not keep that crash point armed.
    #[test]
    fn only_a_queued_message_is_delivered_and_not_yet_written_back() {
        let w = World::new(
            Config::default(),
            BTreeSet::new(),
            false,
            crate::tls::SimTls::new(0, std::iter::empty(), BTreeSet::new()),
        );
        let tap = SimTap(Rc::new(RefCell::new(w)));
        tap.event("delivered Q001-000001 local alice@example.com before the reply");
        assert!(tap.0.borrow().unrecorded.is_empty());
        tap.0.borrow_mut().spool.queue.insert(
            "Q001-000002".into(),
            QueueFile {
                entry: None,
                junk: None,
            },
        );
        tap.event("delivered Q001-000002 local alice@example.com");
        assert!(tap.0.borrow().unrecorded.contains("Q001-000002"));
    }
}
