//! A message whose body was being written to the spool when it was cut
//! off (the client went away mid-data) or refused (a bare LF) is aborted:
//! its spool file is dropped and nothing is committed.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use common::{NoBoxes, NoRoutes, OneClient, read_until};
use relayguard_core::{Config, Policy};
use relayguard_node::{Entry, Listing, NoTap, Node, NodeConfig, Spool, StoreError, Unreadable};
use tokio::io::AsyncWriteExt;

/// What the node asked of the spool.
#[derive(Default)]
struct Calls {
    begun: Cell<usize>,
    appended: Cell<usize>,
    aborted: Cell<usize>,
    committed: Cell<usize>,
}

struct Recording(Rc<Calls>);
impl Spool for Recording {
    async fn store(&self, _e: &Entry) -> Result<String, StoreError> {
        self.0.committed.set(self.0.committed.get() + 1);
        Ok("s".into())
    }
    type Writer = ();
    async fn begin(&self) -> Result<(), StoreError> {
        self.0.begun.set(self.0.begun.get() + 1);
        Ok(())
    }
    async fn append(&self, _w: &mut (), _piece: Vec<u8>) -> Result<(), StoreError> {
        self.0.appended.set(self.0.appended.get() + 1);
        Ok(())
    }
    async fn commit(&self, _w: (), _e: &Entry) -> Result<String, StoreError> {
        self.0.committed.set(self.0.committed.get() + 1);
        Ok("c".into())
    }
    async fn abort(&self, _w: ()) {
        self.0.aborted.set(self.0.aborted.get() + 1);
    }
    nothing_queued!();
}

/// Runs a node whose one client sends a 200 KB body, then `ending`
/// (`None`: it goes away instead); returns the spool calls and what the
/// client heard after the body.
async fn send(ending: Option<&'static [u8]>) -> (Rc<Calls>, String) {
    let (server, mut client) = tokio::io::duplex(1 << 16);
    let calls = Rc::new(Calls::default());
    let policy = Arc::new(
        Policy::new(
            Config::from_toml("hostname = \"mail.example.com\"\n[domains]\nlocal = [\"example.com\"]\n")
                .unwrap(),
        )
        .unwrap(),
    );
    let node = Node::new(
        policy,
        NodeConfig::new("127.0.0.1:25".parse().unwrap()),
        OneClient(RefCell::new(Some(server))),
        Recording(calls.clone()),
        NoRoutes,
        NoBoxes,
        NoTap,
    );
    let local = tokio::task::LocalSet::new();
    let heard = local
        .run_until(async move {
            tokio::task::spawn_local(node.run());
            read_until(&mut client, "220").await;
            client
                .write_all(b"EHLO c.example.org\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n")
                .await
                .unwrap();
            read_until(&mut client, "354").await;
            let line = b"a line of a message that is being cut off somewhere\r\n";
            for _ in 0..4000 {
                client.write_all(line).await.unwrap();
            }
            let heard = match ending {
                Some(end) => {
                    client.write_all(end).await.unwrap();
                    read_until(&mut client, "\r\n").await
                }
                None => String::new(),
            };
            drop(client);
            // Let the node see the end of the connection.
            tokio::time::sleep(Duration::from_secs(1)).await;
            heard
        })
        .await;
    (calls, heard)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_client_gone_mid_data_leaves_no_file() {
    let (calls, _) = send(None).await;
    assert_eq!(calls.begun.get(), 1);
    // The first write carries the 64 KiB held before it (held_body_max).
    assert!(
        calls.appended.get() >= 2,
        "{} pieces written",
        calls.appended.get()
    );
    assert_eq!(calls.aborted.get(), 1, "the partial file is dropped");
    assert_eq!(calls.committed.get(), 0);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_refused_body_leaves_no_file() {
    let (calls, heard) = send(Some(b"bare\nLF\r\n.\r\n")).await;
    assert!(heard.starts_with("554 5.6.0"), "{heard}");
    assert_eq!(calls.aborted.get(), 1, "the partial file is dropped");
    assert_eq!(calls.committed.get(), 0);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_whole_body_is_committed() {
    let (calls, heard) = send(Some(b".\r\n")).await;
    assert!(heard.starts_with("250 2.0.0"), "{heard}");
    assert_eq!(
        (calls.begun.get(), calls.aborted.get(), calls.committed.get()),
        (1, 0, 1)
    );
}
