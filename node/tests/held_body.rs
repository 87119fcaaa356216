//! A body that fits in `held_body_max` is held in memory to its end. When
//! every recipient is local it goes into the mailboxes before the reply and
//! no queue file is written; a recipient whose delivery failed is queued
//! (alone); a larger body, a remote recipient, or a spool that cannot name
//! a message it has not stored, takes the queue as before.
//!
//! The spool here cannot read a body back, so a queued message is never
//! delivered: a delivery seen by the time the client reads its `250` was
//! made before the reply.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use common::{NoRoutes, OneClient, pending, read_until};
use relayguard_core::{Config, Message, Policy};
use relayguard_node::{
    DeliverError, Entry, Listing, Mailboxes, NoTap, Node, NodeConfig, Spool, StoreError, Unreadable,
};
use tokio::io::AsyncWriteExt;

/// What the node asked of the spool and of the mailboxes, in order.
#[derive(Default)]
struct Seen {
    calls: RefCell<Vec<String>>,
    /// Whether the spool names messages it has not stored.
    names: bool,
}

impl Seen {
    fn note(&self, what: String) {
        self.calls.borrow_mut().push(what);
    }
}

struct Recording(Rc<Seen>);
impl Spool for Recording {
    async fn store(&self, e: &Entry) -> Result<String, StoreError> {
        self.0.note(format!(
            "store {} octets for {}",
            e.message.body.len(),
            pending(e)
        ));
        Ok("S1".into())
    }
    fn fresh_id(&self) -> Option<String> {
        self.0.names.then(|| "F1".to_string())
    }
    type Writer = ();
    async fn begin(&self) -> Result<(), StoreError> {
        self.0.note("begin".into());
        Ok(())
    }
    async fn append(&self, _w: &mut (), piece: Vec<u8>) -> Result<(), StoreError> {
        self.0.note(format!("append {}", piece.len()));
        Ok(())
    }
    async fn commit(&self, _w: (), e: &Entry) -> Result<String, StoreError> {
        self.0.note(format!("commit for {}", pending(e)));
        Ok("C1".into())
    }
    async fn abort(&self, _w: ()) {
        self.0.note("abort".into());
    }
    nothing_queued!();
}

/// `later@` defers; every other mailbox takes the message.
struct Boxes(Rc<Seen>);
impl Mailboxes for Boxes {
    async fn deliver(&self, mailbox: &str, id: &str, m: &Message) -> Result<(), DeliverError> {
        self.0
            .note(format!("deliver {id} {} octets to {mailbox}", m.body.len()));
        match mailbox.starts_with("later@") {
            true => Err(DeliverError::Transient("mailbox busy".into())),
            false => Ok(()),
        }
    }
}

/// A body line; its type holds its length.
const LINE: &[u8; 50] = b"a line of the message, fifty octets with its CRL\r\n";

/// One client sends a body of `lines` 50-octet lines to `rcpts`; returns
/// what the spool and the mailboxes saw by the time it read the reply to
/// the data, and that reply.
async fn send(rcpts: &[&str], lines: usize, held_body_max: usize, names: bool) -> (Vec<String>, String) {
    let (server, mut client) = tokio::io::duplex(1 << 16);
    let seen = Rc::new(Seen {
        names,
        ..Seen::default()
    });
    let policy = Arc::new(
        Policy::new(
            Config::from_toml(
                "hostname = \"mail.example.com\"\n[domains]\nlocal = [\"example.com\"]\nrelay_to = [\"backup.example\"]\n",
            )
            .unwrap(),
        )
        .unwrap(),
    );
    let mut config = NodeConfig::new("127.0.0.1:25".parse().unwrap());
    config.held_body_max = held_body_max;
    let node = Node::new(
        policy,
        config,
        OneClient(RefCell::new(Some(server))),
        Recording(seen.clone()),
        NoRoutes,
        Boxes(seen.clone()),
        NoTap,
    );
    let mut envelope = String::from("EHLO c.example.org\r\nMAIL FROM:<a@example.org>\r\n");
    for r in rcpts {
        envelope.push_str(&format!("RCPT TO:<{r}>\r\n"));
    }
    envelope.push_str("DATA\r\n");
    let local = tokio::task::LocalSet::new();
    let heard = local
        .run_until(async move {
            tokio::task::spawn_local(node.run());
            read_until(&mut client, "220").await;
            client.write_all(envelope.as_bytes()).await.unwrap();
            read_until(&mut client, "354").await;
            for _ in 0..lines {
                client.write_all(LINE).await.unwrap();
            }
            client.write_all(b".\r\n").await.unwrap();
            read_until(&mut client, "\r\n").await
        })
        .await;
    (seen.calls.take(), heard)
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn local_mail_goes_into_the_mailboxes_before_the_reply_with_no_queue_file() {
    let (calls, heard) = send(&["alice@example.com", "bob@example.com"], 20, 64 * 1024, true).await;
    assert!(heard.starts_with("250 2.0.0") && heard.contains("F1"), "{heard}");
    assert_eq!(
        calls,
        strings(&[
            "deliver F1 1000 octets to alice@example.com",
            "deliver F1 1000 octets to bob@example.com",
        ])
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_recipient_whose_delivery_failed_is_queued_alone() {
    let (calls, heard) = send(&["alice@example.com", "later@example.com"], 20, 64 * 1024, true).await;
    assert!(heard.starts_with("250 2.0.0") && heard.contains("S1"), "{heard}");
    assert_eq!(
        calls,
        strings(&[
            "deliver F1 1000 octets to alice@example.com",
            "deliver F1 1000 octets to later@example.com",
            "store 1000 octets for <later@example.com>",
        ])
    );
}

/// A `relay_to` recipient is sent on, not delivered here: the message is
/// queued whole, in one write.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn mail_with_a_recipient_elsewhere_is_queued_in_one_write() {
    let (calls, heard) = send(&["alice@example.com", "carl@backup.example"], 20, 64 * 1024, true).await;
    assert!(heard.starts_with("250 2.0.0"), "{heard}");
    assert_eq!(
        calls,
        strings(&["store 1000 octets for <alice@example.com>,<carl@backup.example>"])
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_spool_that_names_only_what_it_stores_queues_local_mail() {
    let (calls, _) = send(&["alice@example.com"], 20, 64 * 1024, false).await;
    assert_eq!(calls, strings(&["store 1000 octets for <alice@example.com>"]));
}

/// Past `held_body_max` the body goes into the spool as it comes, what was
/// held in the first write; with 0 nothing is held.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_longer_body_is_streamed_into_the_spool() {
    for max in [0, 1000, 4096] {
        let (calls, heard) = send(&["alice@example.com"], 200, max, true).await;
        assert!(
            heard.starts_with("250 2.0.0") && heard.contains("C1"),
            "{max}: {heard}"
        );
        assert_eq!(
            calls.first().map(String::as_str),
            Some("begin"),
            "{max}: {calls:?}"
        );
        assert_eq!(
            calls.last().map(String::as_str),
            Some("commit for <alice@example.com>")
        );
        let written: usize = calls
            .iter()
            .filter_map(|c| c.strip_prefix("append "))
            .map(|n| n.parse::<usize>().unwrap())
            .sum();
        assert_eq!(written, 10_000, "{max}: {calls:?}");
        assert!(
            !calls.iter().any(|c| c.starts_with("deliver")),
            "{max}: {calls:?}"
        );
    }
}
