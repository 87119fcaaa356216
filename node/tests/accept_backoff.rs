//! The accept loop under descriptor exhaustion: a fake network whose
//! `accept` fails with EMFILE for ten simulated seconds. The loop must wait
//! with a doubling, capped backoff and log the episode once when it starts
//! and once when it ends; trying again at full rate would use up the
//! attempt budget below (and, without an await, the whole runtime).

mod common;

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use common::{NoBoxes, NoRoutes};
use relayguard_core::{Config, Policy};
use relayguard_node::{Entry, Listing, Net, Node, NodeConfig, Spool, StoreError, Tap, Unreadable};
use tokio::io::DuplexStream;
use tokio::time::Instant;

const EMFILE: i32 = 24;
/// More tries than any backoff makes in the test's 30 s; a loop without one
/// reaches it and then waits forever, so the test ends either way.
const GIVE_UP: usize = 10_000;

/// What `accept` does until a point in simulated time.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Fails with EMFILE.
    Emfile,
    /// Fails and accepts by turns: descriptors freed and used up again.
    Churn,
    /// Accepts a connection every two seconds.
    Serve,
}

struct FlakyNet {
    start: Instant,
    phases: Vec<(Duration, Phase)>,
    tries: Rc<RefCell<Vec<Duration>>>,
    clients: RefCell<Vec<DuplexStream>>,
}

impl FlakyNet {
    fn new(phases: Vec<(Duration, Phase)>, tries: Rc<RefCell<Vec<Duration>>>) -> FlakyNet {
        FlakyNet {
            start: Instant::now(),
            phases,
            tries,
            clients: RefCell::new(Vec::new()),
        }
    }

    fn connection(&self) -> io::Result<(DuplexStream, IpAddr)> {
        let (server, client) = tokio::io::duplex(4096);
        self.clients.borrow_mut().push(client);
        Ok((server, "192.0.2.1".parse().unwrap()))
    }
}

impl Net for FlakyNet {
    type Stream = DuplexStream;
    type Listener = ();

    async fn listen(&self, _addr: SocketAddr) -> io::Result<()> {
        Ok(())
    }

    async fn accept(&self, _l: &()) -> io::Result<(DuplexStream, IpAddr)> {
        let at = self.start.elapsed();
        let n = {
            let mut tries = self.tries.borrow_mut();
            tries.push(at);
            tries.len()
        };
        let phase = self.phases.iter().find(|(until, _)| at < *until).map(|p| p.1);
        match phase {
            _ if n >= GIVE_UP => std::future::pending().await,
            None => std::future::pending().await,
            Some(Phase::Emfile) => Err(io::Error::from_raw_os_error(EMFILE)),
            Some(Phase::Churn) if n % 2 == 1 => Err(io::Error::from_raw_os_error(EMFILE)),
            Some(Phase::Churn) => self.connection(),
            Some(Phase::Serve) => {
                tokio::time::sleep(Duration::from_secs(2)).await;
                self.connection()
            }
        }
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
    type Writer = ();
    async fn begin(&self) -> Result<(), StoreError> {
        Err(StoreError::Transient("no spool".into()))
    }
    async fn append(&self, _w: &mut (), _piece: Vec<u8>) -> Result<(), StoreError> {
        Err(StoreError::Transient("no spool".into()))
    }
    async fn commit(&self, _w: (), _e: &Entry) -> Result<String, StoreError> {
        Err(StoreError::Transient("no spool".into()))
    }
    async fn abort(&self, _w: ()) {}
    nothing_queued!();
}

struct Events(Rc<RefCell<Vec<String>>>);
impl Tap for Events {
    fn event(&self, what: &str) {
        self.0.borrow_mut().push(what.to_string());
    }
}

/// Runs a node on `net` for 40 simulated seconds; returns its accept
/// events and the node's open connections.
async fn run(net: FlakyNet, config: NodeConfig) -> (Vec<String>, usize) {
    let events = Rc::new(RefCell::new(Vec::new()));
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
        .run_until(tokio::time::timeout(Duration::from_secs(40), node.clone().run()))
        .await;
    assert!(served.is_err(), "the loop must still be serving: {served:?}");
    let accept = events
        .borrow()
        .iter()
        .filter(|e| e.starts_with("accept:"))
        .cloned()
        .collect();
    (accept, node.connections())
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn emfile_is_waited_out_with_a_doubling_capped_backoff_and_logged_once() {
    let tries = Rc::new(RefCell::new(Vec::new()));
    let config = NodeConfig::new("127.0.0.1:25".parse().unwrap());
    let (base, max) = (config.accept_backoff_base, config.accept_backoff_max);
    let net = FlakyNet::new(
        vec![
            (Duration::from_secs(10), Phase::Emfile),
            (Duration::from_secs(30), Phase::Serve),
        ],
        tries.clone(),
    );
    let (accept, open) = run(net, config).await;

    let tries = tries.borrow();
    let failed: Vec<Duration> = tries
        .iter()
        .copied()
        .filter(|t| *t < Duration::from_secs(10))
        .collect();
    assert!(
        failed.len() < 30,
        "{} failed tries of accept in 10 simulated seconds: no backoff",
        failed.len()
    );
    // The waits between failed tries double from the base up to the cap.
    let gaps: Vec<Duration> = failed.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps.first(), Some(&base), "{gaps:?}");
    for w in gaps.windows(2) {
        assert!(w[1] == (w[0] * 2).min(max), "{gaps:?}");
    }
    assert_eq!(gaps.last(), Some(&max), "{gaps:?}");
    // The connections after the episode were accepted and are served.
    assert!(open >= 5, "{open} connections open");

    assert_eq!(
        accept.len(),
        2,
        "one line when the episode starts, one when it ends: {accept:?}"
    );
    assert!(accept[0].contains("os error 24"), "{accept:?}");
    assert!(
        accept[1].contains(&format!("after {} failed tries", failed.len())),
        "{accept:?}"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_churn_of_failures_and_accepts_is_one_episode_in_the_log() {
    let tries = Rc::new(RefCell::new(Vec::new()));
    let config = NodeConfig::new("127.0.0.1:25".parse().unwrap());
    let net = FlakyNet::new(
        vec![
            (Duration::from_secs(5), Phase::Churn),
            (Duration::from_secs(35), Phase::Serve),
        ],
        tries.clone(),
    );
    let (accept, _) = run(net, config).await;
    let churned = tries
        .borrow()
        .iter()
        .filter(|t| **t < Duration::from_secs(5))
        .count();
    assert!(churned > 100, "the churn phase made only {churned} tries");
    assert_eq!(
        accept.len(),
        2,
        "{} lines, first {:?}",
        accept.len(),
        accept.first()
    );
    assert!(accept[1].contains("working again"), "{accept:?}");
}
