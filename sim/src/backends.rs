//! The relay's backends in the simulation: the node runs its real code
//! against these instead of sockets, a disk, DNS and Maildir.
//!
//! Each one is as simple as the node's contract allows and no simpler:
//! the spool takes time to write and keeps its entries in the world, so that
//! a crash can land mid-write and a restart finds what was durable; the tap
//! is where the wire checker and the trace see every byte.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use relayguard_core::Domain;
use relayguard_core::Message;
use relayguard_node::{DeliverError, Entry, Mailboxes, Net, Resolver, Spool, StoreError, Tap, Unreadable};

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
        let watch = checkers::wire::Watch::new(&w.config, peer);
        w.watches.insert(conn, watch);
        checkers::hostile::connected(&mut w, conn, peer);
        w.event(&format!("connect {conn} from {peer}"));
        conn
    }
    fn client_bytes(&self, conn: u64, bytes: &[u8]) {
        let mut w = self.0.borrow_mut();
        w.hash = fnv(w.hash, bytes);
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
        }
        checkers::hostile::server_bytes(&mut w, conn, bytes);
    }
    fn handed_on(&self, conn: u64, message: &Message) {
        let mut w = self.0.borrow_mut();
        w.stats.messages += 1;
        let corpus = w
            .watches
            .get(&conn)
            .is_some_and(|x| w.corpus_ips.contains(&x.peer));
        if corpus {
            let h = fnv(FNV0, &message.body);
            w.corpus_bodies.insert(h);
        }
        if let Some(x) = w.watches.get_mut(&conn) {
            x.oracle.handed_on(message);
        }
    }
    fn closed(&self, conn: u64) {
        let mut w = self.0.borrow_mut();
        w.event(&format!("close {conn}"));
        checkers::wire::finish(&mut w, conn);
        checkers::hostile::closed(&mut w, conn);
    }
    fn event(&self, what: &str) {
        self.0.borrow_mut().event(what);
    }
}

/// Turmoil's TCP, which the partitions, holds and latencies act on.
pub(crate) struct TurmoilNet;

impl Net for TurmoilNet {
    type Stream = turmoil::net::TcpStream;
    type Listener = turmoil::net::TcpListener;
    async fn listen(&self, addr: SocketAddr) -> io::Result<Self::Listener> {
        turmoil::net::TcpListener::bind(addr).await
    }
    async fn accept(&self, l: &Self::Listener) -> io::Result<(Self::Stream, IpAddr)> {
        l.accept().await.map(|(s, a)| (s, a.ip()))
    }
    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Stream> {
        turmoil::net::TcpStream::connect(addr).await
    }
}

/// The relay's spool: a write is durable only when its future completes.
pub(crate) struct SimSpool {
    pub(crate) world: Shared,
    pub(crate) write: Duration,
}

/// Counts a write under way for as long as its future lives, so that a
/// crash that drops the future mid-write is seen as one.
struct Writing<'a>(&'a Shared);
impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.borrow_mut().spool.writing -= 1;
    }
}

impl Spool for SimSpool {
    async fn store(&self, entry: &Entry) -> Result<String, StoreError> {
        self.world.borrow_mut().spool.writing += 1;
        let _w = Writing(&self.world);
        tokio::time::sleep(self.write).await;
        let mut w = self.world.borrow_mut();
        w.spool.next += 1;
        let id = format!("Q{:06}", w.spool.next);
        w.spool.entries.insert(id.clone(), entry.clone());
        Ok(id)
    }
    async fn update(&self, id: &str, entry: &Entry) {
        tokio::time::sleep(self.write).await;
        if let Some(e) = self.world.borrow_mut().spool.entries.get_mut(id) {
            *e = entry.clone();
        }
    }
    async fn remove(&self, id: &str) {
        self.world.borrow_mut().spool.entries.remove(id);
    }
    async fn list(&self) -> Vec<Result<(String, Entry), Unreadable>> {
        let w = self.world.borrow();
        w.spool
            .entries
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.clone())))
            .collect()
    }
    async fn quarantine(&self, _bad: &Unreadable) {}
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

/// Local delivery is an arrival like any other, judged the same way.
pub(crate) struct SimMailboxes(pub(crate) Shared);

impl Mailboxes for SimMailboxes {
    async fn deliver(&self, mailbox: &str, _id: &str, m: &Message) -> Result<(), DeliverError> {
        self.0.borrow_mut().arrive(
            format!("mailbox {mailbox}"),
            vec![mailbox.to_string()],
            m.from.is_null(),
            &m.body,
        );
        Ok(())
    }
}
