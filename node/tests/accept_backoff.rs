//! The accept loop under descriptor exhaustion: a fake network whose
//! `accept` fails with EMFILE for ten simulated seconds. The loop must wait
//! with a doubling, capped backoff and log the episode once when it starts
//! and once when it ends; trying again at full rate would use up the
//! attempt budget below (and, without an await, the whole runtime).

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use relayguard_core::{Config, Domain, Message, Policy};
use relayguard_node::{
    DeliverError, Entry, Mailboxes, Net, Node, NodeConfig, Resolver, Spool, StoreError, Tap, Unreadable,
};
use tokio::io::DuplexStream;
use tokio::time::Instant;

const EMFILE: i32 = 24;
/// More tries than any backoff makes in the test's 30 s; a loop without one
/// reaches it and then waits forever, so the test ends either way.
const GIVE_UP: usize = 10_000;

struct FlakyNet {
    start: Instant,
    fail_for: Duration,
    tries: Rc<RefCell<Vec<Duration>>>,
    served: Cell<bool>,
    clients: RefCell<Vec<DuplexStream>>,
}

impl Net for FlakyNet {
    type Stream = DuplexStream;
    type Listener = ();

    async fn listen(&self, _addr: SocketAddr) -> io::Result<()> {
        Ok(())
    }

    async fn accept(&self, _l: &()) -> io::Result<(DuplexStream, IpAddr)> {
        let at = self.start.elapsed();
        self.tries.borrow_mut().push(at);
        if self.tries.borrow().len() >= GIVE_UP || self.served.get() {
            return std::future::pending().await;
        }
        if at < self.fail_for {
            return Err(io::Error::from_raw_os_error(EMFILE));
        }
        self.served.set(true);
        let (server, client) = tokio::io::duplex(4096);
        self.clients.borrow_mut().push(client);
        Ok((server, "192.0.2.1".parse().unwrap()))
    }

    async fn connect(&self, _addr: SocketAddr) -> io::Result<DuplexStream> {
        Err(io::Error::other("no network"))
    }
}

struct NoSpool;
impl Spool for NoSpool {
    async fn store(&self, _e: &Entry) -> Result<String, StoreError> {
        Err(StoreError::Transient("no spool".into()))
    }
    async fn update(&self, _id: &str, _e: &Entry) {}
    async fn remove(&self, _id: &str) {}
    async fn list(&self) -> Vec<Result<(String, Entry), Unreadable>> {
        Vec::new()
    }
    async fn quarantine(&self, _bad: &Unreadable) {}
}

struct NoRoutes;
impl Resolver for NoRoutes {
    async fn resolve(&self, _d: &Domain) -> Vec<SocketAddr> {
        Vec::new()
    }
}

struct NoBoxes;
impl Mailboxes for NoBoxes {
    async fn deliver(&self, _m: &str, _id: &str, _msg: &Message) -> Result<(), DeliverError> {
        Ok(())
    }
}

struct Events(Rc<RefCell<Vec<String>>>);
impl Tap for Events {
    fn event(&self, what: &str) {
        self.0.borrow_mut().push(what.to_string());
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn emfile_is_waited_out_with_a_doubling_capped_backoff_and_logged_once() {
    let tries = Rc::new(RefCell::new(Vec::new()));
    let events = Rc::new(RefCell::new(Vec::new()));
    let config = NodeConfig::new("127.0.0.1:25".parse().unwrap());
    let (base, max) = (config.accept_backoff_base, config.accept_backoff_max);
    let net = FlakyNet {
        start: Instant::now(),
        fail_for: Duration::from_secs(10),
        tries: tries.clone(),
        served: Cell::new(false),
        clients: RefCell::new(Vec::new()),
    };
    let policy = Arc::new(Policy::new(Config::default()).unwrap());
    let node = Node::new(
        policy,
        config,
        net,
        NoSpool,
        NoRoutes,
        NoBoxes,
        Events(events.clone()),
    );
    let local = tokio::task::LocalSet::new();
    let served = local
        .run_until(tokio::time::timeout(Duration::from_secs(30), node.clone().run()))
        .await;
    assert!(served.is_err(), "the loop must still be serving: {served:?}");

    let tries = tries.borrow();
    let failed: Vec<Duration> = tries
        .iter()
        .copied()
        .filter(|t| *t < Duration::from_secs(10))
        .collect();
    assert!(
        tries.len() < 30,
        "{} tries of accept in 30 simulated seconds: no backoff",
        tries.len()
    );
    // The waits between failed tries double from the base up to the cap.
    let gaps: Vec<Duration> = failed.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps.first(), Some(&base), "{gaps:?}");
    for w in gaps.windows(2) {
        assert!(w[1] == (w[0] * 2).min(max), "{gaps:?}");
    }
    assert_eq!(gaps.last(), Some(&max), "{gaps:?}");
    // The connection after the episode was accepted and served.
    assert!(node.connections() == 1, "{}", node.connections());

    let accept: Vec<String> = events
        .borrow()
        .iter()
        .filter(|e| e.starts_with("accept:"))
        .cloned()
        .collect();
    assert_eq!(
        accept.len(),
        2,
        "one line when the episode starts, one when it ends: {accept:?}"
    );
    assert!(
        accept[0].contains("Too many open files") || accept[0].contains("os error 24"),
        "{accept:?}"
    );
    assert!(
        accept[1].contains(&format!("after {} failed tries", failed.len())),
        "{accept:?}"
    );
}
