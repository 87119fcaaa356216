//! Outbound connections per destination domain are capped at
//! `limits.destination_concurrency_limit` (Postfix's
//! `default_destination_concurrency_limit`): ten queued messages for one
//! domain, recovered at once, reach a fake exchanger that holds each
//! connection for a simulated second and counts how many are open at once.

use std::cell::Cell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use relayguard_core::{
    Config, Destination, Domain, Mailbox, Message, Peer, Policy, Recipient, Session, parse_path,
};
use relayguard_node::{
    Clock, DeliverError, Entry, Listing, Mailboxes, Net, NoTap, Node, NodeConfig, Resolver, ServerHooks,
    Spool, StoreError, Unreadable, drive_server,
};
use tokio::io::DuplexStream;

const MESSAGES: usize = 10;
const LIMIT: usize = 3;

/// What the exchanger saw.
#[derive(Default)]
struct Counts {
    open: Cell<usize>,
    most: Cell<usize>,
    stored: Cell<usize>,
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
    async fn store(&mut self, _m: Message) -> Result<String, StoreError> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.0.stored.set(self.0.stored.get() + 1);
        Ok("x".into())
    }
}

impl Net for ExchangerNet {
    type Stream = DuplexStream;
    type Listener = ();
    async fn listen(&self, _addr: SocketAddr) -> io::Result<()> {
        Ok(())
    }
    async fn accept(&self, _l: &()) -> io::Result<(DuplexStream, IpAddr)> {
        std::future::pending().await
    }
    async fn connect(&self, _addr: SocketAddr) -> io::Result<DuplexStream> {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let c = self.counts.clone();
        c.open.set(c.open.get() + 1);
        c.most.set(c.most.get().max(c.open.get()));
        let session = Session::new(
            self.policy.clone(),
            Peer {
                ip: "192.0.2.9".parse().unwrap(),
            },
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
    type Writer = ();
    async fn begin(&self) -> Result<(), StoreError> {
        Err(StoreError::Transient("not in this test".into()))
    }
    async fn append(&self, _w: &mut (), _piece: Vec<u8>) -> Result<(), StoreError> {
        Ok(())
    }
    async fn commit(&self, _w: (), _e: &Entry) -> Result<String, StoreError> {
        Err(StoreError::Transient("not in this test".into()))
    }
    async fn abort(&self, _w: ()) {}
    async fn body(&self, _id: &str) -> Result<Vec<u8>, StoreError> {
        Ok(b"Subject: hi\r\n\r\nhello\r\n".to_vec())
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
                    body: Vec::new(),
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

struct NoBoxes;
impl Mailboxes for NoBoxes {
    async fn deliver(&self, _m: &str, _id: &str, _msg: &Message) -> Result<(), DeliverError> {
        Ok(())
    }
}

fn policy(toml: &str) -> Arc<Policy> {
    Arc::new(Policy::new(Config::from_toml(toml).unwrap()).unwrap())
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn connections_to_one_domain_stay_within_the_limit() {
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
    assert_eq!(
        counts.most.get(),
        LIMIT,
        "connections open at once to one domain (limit {LIMIT})"
    );
}
