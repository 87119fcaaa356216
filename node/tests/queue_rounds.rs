//! The queue's rounds in simulated time, seen from the spool: when the
//! listing is tried again after a passing failure, when a deferred
//! recipient is tried again, when it is bounced for its age, and that a
//! bounce that could not be stored keeps its recipients queued and a
//! finished entry is removed, however often the removal fails first.
//! The queue also holds a file that cannot be read back: it is set aside,
//! and it hides nothing.
//!
//! Local mailboxes only: `later@` always defers, `gone@` always fails,
//! every other mailbox takes the message.

mod common;

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use common::{NoRoutes, pending};
use relayguard_core::{Config, Destination, Message, Policy, Recipient, parse_path};
use relayguard_node::{
    DeliverError, Entry, Listing, Mailboxes, Net, NoTap, Node, NodeConfig, Spool, StoreError, Unreadable,
};
use tokio::io::DuplexStream;
use tokio::time::Instant;

/// How often each spool call fails before it succeeds.
#[derive(Default, Clone, Copy)]
struct Failures {
    list: usize,
    store: usize,
    remove: usize,
}

/// Records each call as whole seconds since the start, with what it was.
struct Recorder {
    start: Instant,
    calls: RefCell<Vec<(u64, String)>>,
    fail: Cell<Failures>,
    to: &'static str,
}

impl Recorder {
    fn note(&self, what: String) {
        let at = self.start.elapsed().as_secs();
        self.calls.borrow_mut().push((at, what));
    }

    /// Whether this call of `kind` fails, counting it off.
    fn fails(&self, pick: impl Fn(&mut Failures) -> &mut usize) -> bool {
        let mut f = self.fail.get();
        let n = pick(&mut f);
        let fails = *n > 0;
        *n = n.saturating_sub(1);
        self.fail.set(f);
        fails
    }
}

struct Recording(Rc<Recorder>);

impl Spool for Recording {
    async fn store(&self, e: &Entry) -> Result<String, StoreError> {
        if self.0.fails(|f| &mut f.store) {
            self.0.note("store failed".into());
            return Err(StoreError::Transient("full".into()));
        }
        self.0.note(format!("store bounce to {}", pending(e)));
        Ok("b".into())
    }
    no_streamed_writes!();
    async fn body(&self, _id: &str) -> Result<Vec<u8>, StoreError> {
        Ok(b"Subject: hi\r\n\r\nbody\r\n".to_vec())
    }
    async fn update(&self, id: &str, e: &Entry) -> Result<(), StoreError> {
        self.0
            .note(format!("update {id} {} after {}", pending(e), e.attempts));
        Ok(())
    }
    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        if self.0.fails(|f| &mut f.remove) {
            self.0.note(format!("remove {id} failed"));
            return Err(StoreError::Transient("busy".into()));
        }
        self.0.note(format!("remove {id}"));
        Ok(())
    }
    async fn list(&self) -> Result<Listing, StoreError> {
        if self.0.fails(|f| &mut f.list) {
            self.0.note("list failed".into());
            return Err(StoreError::Transient("no descriptors".into()));
        }
        self.0.note("list".into());
        let path = parse_path(&format!("<{}>", self.0.to)).unwrap();
        let destination = Destination::Local {
            mailbox: path.mailbox.as_ref().unwrap().key(),
        };
        let message = Message {
            client: "192.168.1.10".parse().unwrap(),
            helo: "pc.lan".into(),
            user: None,
            from: parse_path("<sender@example.com>").unwrap(),
            recipients: vec![Recipient { path, destination }],
            body: Vec::new(),
        };
        let junk = Unreadable {
            name: "junk".into(),
            reason: "not a queue file".into(),
        };
        Ok(vec![Err(junk), Ok(("q".to_string(), Entry::new(message)))])
    }
    async fn quarantine(&self, bad: &Unreadable) {
        self.0.note(format!("quarantine {}", bad.name));
    }
}

struct Boxes;
impl Mailboxes for Boxes {
    async fn deliver(&self, mailbox: &str, _id: &str, _m: &Message) -> Result<(), DeliverError> {
        match mailbox.split('@').next() {
            Some("later") => Err(DeliverError::Transient("mailbox busy".into())),
            Some("gone") => Err(DeliverError::Permanent("no such mailbox".into())),
            _ => Ok(()),
        }
    }
}

/// Nobody connects, and the node connects to nobody.
struct Quiet;
impl Net for Quiet {
    nobody_connects!();
    async fn connect(&self, _addr: SocketAddr) -> io::Result<DuplexStream> {
        Err(io::ErrorKind::ConnectionRefused.into())
    }
}

/// Runs a node over one queued entry to `to` for `secs` simulated
/// seconds, retries doubling from 1 s up to 8 s, bounced after 7 s
/// queued; returns the spool's calls.
async fn run(to: &'static str, fail: Failures, secs: u64) -> Vec<(u64, String)> {
    let recorder = Rc::new(Recorder {
        start: Instant::now(),
        calls: RefCell::new(Vec::new()),
        fail: Cell::new(fail),
        to,
    });
    let policy = Arc::new(
        Policy::new(
            Config::from_toml("hostname = \"mail.example.com\"\n[domains]\nlocal = [\"example.com\"]\n")
                .unwrap(),
        )
        .unwrap(),
    );
    let mut config = NodeConfig::new("127.0.0.1:25".parse().unwrap());
    config.retry_base = Duration::from_secs(1);
    config.retry_max = Duration::from_secs(8);
    config.max_queue_age = Duration::from_secs(7);
    let node = Node::new(
        policy,
        config,
        Quiet,
        Recording(recorder.clone()),
        NoRoutes,
        Boxes,
        NoTap,
    );
    let local = tokio::task::LocalSet::new();
    let ran = local
        .run_until(tokio::time::timeout(
            Duration::from_secs(secs),
            node.clone().run(),
        ))
        .await;
    assert!(ran.is_err(), "the node stopped: {ran:?}");
    recorder.calls.take()
}

fn calls(list: &[(u64, &str)]) -> Vec<(u64, String)> {
    list.iter().map(|&(t, s)| (t, s.to_string())).collect()
}

/// The calls of a listing at 0 s, then `rest`.
fn listed_then(rest: &[(u64, &str)]) -> Vec<(u64, String)> {
    let mut all = calls(&[(0, "list"), (0, "quarantine junk")]);
    all.extend(calls(rest));
    all
}

/// A listing that fails is tried again after 1, 2 and 4 s: the backoff
/// grows with each failure.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_failed_listing_is_tried_again_with_a_growing_backoff() {
    let got = run(
        "ok@example.com",
        Failures {
            list: 3,
            ..Default::default()
        },
        30,
    )
    .await;
    assert_eq!(
        got,
        calls(&[
            (0, "list failed"),
            (1, "list failed"),
            (3, "list failed"),
            (7, "list"),
            (7, "quarantine junk"),
            (7, "remove q"),
        ])
    );
}

/// A recipient that keeps deferring is tried at 0, 1, 3 and 7 s; at 7 s
/// it has been queued longer than 7 s would allow after one more round,
/// so it is bounced, and the entry removed.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_deferred_recipient_is_bounced_when_too_old() {
    let got = run("later@example.com", Failures::default(), 60).await;
    assert_eq!(
        got,
        listed_then(&[
            (0, "update q <later@example.com> after 1"),
            (1, "update q <later@example.com> after 2"),
            (3, "update q <later@example.com> after 3"),
            (7, "store bounce to <sender@example.com>"),
            (7, "remove q"),
            (7, "remove b"),
        ])
    );
}

/// A bounce that cannot be stored keeps the failed recipient queued, to
/// be failed and bounced again at the next round, never dropped.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_bounce_not_stored_keeps_its_recipient_queued() {
    let got = run(
        "gone@example.com",
        Failures {
            store: 1,
            ..Default::default()
        },
        30,
    )
    .await;
    assert_eq!(
        got,
        listed_then(&[
            (0, "store failed"),
            (0, "update q <gone@example.com> after 1"),
            (1, "store bounce to <sender@example.com>"),
            (1, "remove q"),
            (1, "remove b"),
        ])
    );
}

/// A finished entry is removed, the removal tried again after 1 and 2 s
/// while it fails: a file left behind would be delivered again at the
/// next start.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_failed_removal_is_tried_again_with_a_growing_backoff() {
    let got = run(
        "ok@example.com",
        Failures {
            remove: 2,
            ..Default::default()
        },
        30,
    )
    .await;
    assert_eq!(
        got,
        listed_then(&[(0, "remove q failed"), (1, "remove q failed"), (3, "remove q"),])
    );
}
