//! Deliveries of recovered messages to a fake exchanger that holds each
//! connection for a simulated second, counts how many are open at once and
//! keeps the bodies it receives:
//!
//! - outbound connections per destination domain are capped at
//!   `limits.destination_concurrency_limit` (Postfix's
//!   `default_destination_concurrency_limit`);
//! - what goes out is the body the spool holds (`Spool::body`), read back
//!   for the delivery: the queue keeps envelopes only, so a body the
//!   listing left in an entry is never what is sent.

mod common;

use std::cell::Cell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use common::NoBoxes;
use relayguard_core::{
    Config, Destination, Domain, Mailbox, Message, Peer, Policy, Recipient, Session, parse_path,
};
use relayguard_node::{
    Clock, Entry, Listing, Net, NoTap, Node, NodeConfig, Resolver, ServerHooks, Spool, StoreError,
    Unreadable, drive_server,
};
use tokio::io::DuplexStream;

const MESSAGES: usize = 10;
const LIMIT: usize = 3;
/// The body every queue file holds.
const ON_DISK: &[u8] = b"Subject: hi\r\n\r\nread back from the spool\r\n";

/// What the exchanger saw.
#[derive(Default)]
struct Counts {
    open: Cell<usize>,
    most: Cell<usize>,
    stored: Cell<usize>,
    bodies: std::cell::RefCell<Vec<Vec<u8>>>,
}

/// Every connection reaches the exchanger, served in a task of its own.
struct ExchangerNet {
    counts: Rc<Counts>,
    policy: Arc<Policy>,
    clock: Rc<Clock>,
}

/// The exchanger stores each message after a simulated second, so that
/// deliveries overlap.
struct SlowStore(Rc<Counts>);
impl ServerHooks for SlowStore {
    async fn store(&mut self, m: Message) -> Result<String, StoreError> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.0.stored.set(self.0.stored.get() + 1);
        self.0.bodies.borrow_mut().push(m.body);
        Ok("x".into())
    }
}

impl Net for ExchangerNet {
    nobody_connects!();
    async fn connect(&self, _addr: SocketAddr) -> io::Result<DuplexStream> {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let c = self.counts.clone();
        c.open.set(c.open.get() + 1);
        c.most.set(c.most.get().max(c.open.get()));
        let session = Session::new(
            self.policy.clone(),
            Peer::direct("192.0.2.9".parse().unwrap()),
            self.clock.now(),
        );
        let clock = self.clock.clone();
        tokio::task::spawn_local(async move {
            drive_server(theirs, session, &clock, &mut SlowStore(c.clone())).await;
            c.open.set(c.open.get() - 1);
        });
        Ok(ours)
    }
}

/// A spool that holds `MESSAGES` entries for one domain at the start.
struct Queued;
impl Spool for Queued {
    async fn store(&self, _e: &Entry) -> Result<String, StoreError> {
        Err(StoreError::Transient("not in this test".into()))
    }
    no_streamed_writes!();
    async fn body(&self, _id: &str) -> Result<Vec<u8>, StoreError> {
        Ok(ON_DISK.to_vec())
    }
    async fn update(&self, _id: &str, _e: &Entry) -> Result<(), StoreError> {
        Ok(())
    }
    async fn remove(&self, _id: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn list(&self) -> Result<Listing, StoreError> {
        Ok((0..MESSAGES)
            .map(|i| {
                let to = format!("user{i}@dest.example");
                let message = Message {
                    client: "192.168.1.10".parse().unwrap(),
                    helo: "pc.lan".into(),
                    user: None,
                    from: parse_path("<a@example.com>").unwrap(),
                    recipients: vec![Recipient {
                        path: parse_path(&format!("<{to}>")).unwrap(),
                        destination: Destination::Remote {
                            mailbox: Mailbox::parse(&to).unwrap(),
                        },
                    }],
                    // A spool should list envelopes; this one leaves a body
                    // in, which the node must not send.
                    body: b"Subject: stale\r\n\r\nheld in memory\r\n".to_vec(),
                };
                Ok((format!("q{i}"), Entry::new(message)))
            })
            .collect())
    }
    async fn quarantine(&self, _bad: &Unreadable) {}
}

struct OneExchanger;
impl Resolver for OneExchanger {
    async fn resolve(&self, _d: &Domain) -> Vec<SocketAddr> {
        vec!["192.0.2.25:25".parse().unwrap()]
    }
}

fn policy(toml: &str) -> Arc<Policy> {
    Arc::new(Policy::new(Config::from_toml(toml).unwrap()).unwrap())
}

/// Recovers the queue and runs the node for a simulated minute; returns
/// what the exchanger saw.
async fn deliver_all() -> Rc<Counts> {
    let counts = Rc::new(Counts::default());
    let net = ExchangerNet {
        counts: counts.clone(),
        policy: policy("hostname = \"mx.dest.example\"\n[domains]\nlocal = [\"dest.example\"]\n"),
        clock: Rc::new(Clock::start()),
    };
    let relay = policy(&format!(
        "hostname = \"mail.example.com\"\n[domains]\nlocal = [\"example.com\"]\n[limits]\ndestination_concurrency_limit = {LIMIT}\n"
    ));
    let mut config = NodeConfig::new("127.0.0.1:25".parse().unwrap());
    config.max_deliveries = 100;
    let node = Node::new(relay, config, net, Queued, OneExchanger, NoBoxes, NoTap);
    let local = tokio::task::LocalSet::new();
    let served = local
        .run_until(tokio::time::timeout(Duration::from_secs(60), node.clone().run()))
        .await;
    assert!(served.is_err(), "the node stopped: {served:?}");
    assert_eq!(counts.stored.get(), MESSAGES, "every message delivered");
    counts
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn connections_to_one_domain_stay_within_the_limit() {
    let counts = deliver_all().await;
    assert_eq!(
        counts.most.get(),
        LIMIT,
        "connections open at once to one domain (limit {LIMIT})"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_body_sent_is_the_one_read_back_from_the_spool() {
    let counts = deliver_all().await;
    let bodies = counts.bodies.borrow();
    assert_eq!(bodies.len(), MESSAGES);
    assert!(bodies.iter().all(|b| b == ON_DISK), "{bodies:?}");
}
