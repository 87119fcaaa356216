//! Ports the node tests do not exercise: no exchanger for any domain, and
//! local mailboxes that take everything.

// Each test binary uses the ports it needs.
#![allow(dead_code)]

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};

use relayguard_core::{Domain, Message};
use relayguard_node::{DeliverError, Entry, Mailboxes, Net, Resolver};
use tokio::io::{AsyncReadExt, DuplexStream};

pub struct NoRoutes;
impl Resolver for NoRoutes {
    async fn resolve(&self, _d: &Domain) -> Vec<SocketAddr> {
        Vec::new()
    }
}

/// One client connection (from 203.0.113.7, outside any LAN), then none.
pub struct OneClient(pub RefCell<Option<DuplexStream>>);

impl Net for OneClient {
    type Stream = DuplexStream;
    type Listener = ();
    async fn listen(&self, _addr: SocketAddr) -> io::Result<()> {
        Ok(())
    }
    async fn accept(&self, _l: &()) -> io::Result<(DuplexStream, IpAddr)> {
        let next = self.0.borrow_mut().take();
        match next {
            Some(s) => Ok((s, "203.0.113.7".parse().unwrap())),
            None => std::future::pending().await,
        }
    }
    async fn connect(&self, _addr: SocketAddr) -> io::Result<DuplexStream> {
        Err(io::Error::other("no network"))
    }
}

/// The recipients an entry still has to serve, as the tests print them.
pub fn pending(e: &Entry) -> String {
    e.pending
        .iter()
        .map(|r| r.path.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads until the text read so far contains `want`.
pub async fn read_until(s: &mut DuplexStream, want: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(want) {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before {want:?}: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

pub struct NoBoxes;
impl Mailboxes for NoBoxes {
    async fn deliver(&self, _m: &str, _id: &str, _msg: &Message) -> Result<(), DeliverError> {
        Ok(())
    }
}

/// The streamed-write half of a `Spool` that the test never streams to:
/// `begin` and `commit` refuse, `append` and `abort` do nothing.
#[macro_export]
macro_rules! no_streamed_writes {
    () => {
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
    };
}

/// The queue half of a `Spool` whose test never queues a message for
/// delivery: no body to read back, nothing listed, every update and
/// removal taken.
#[macro_export]
macro_rules! nothing_queued {
    () => {
        async fn body(&self, _id: &str) -> Result<Vec<u8>, StoreError> {
            Err(StoreError::Transient("not in this test".into()))
        }
        async fn update(&self, _id: &str, _e: &Entry) -> Result<(), StoreError> {
            Ok(())
        }
        async fn remove(&self, _id: &str) -> Result<(), StoreError> {
            Ok(())
        }
        async fn list(&self) -> Result<Listing, StoreError> {
            Ok(Vec::new())
        }
        async fn quarantine(&self, _bad: &Unreadable) {}
    };
}

/// The listening half of a `Net` that no client ever reaches.
#[macro_export]
macro_rules! nobody_connects {
    () => {
        type Stream = DuplexStream;
        type Listener = ();
        async fn listen(&self, _addr: SocketAddr) -> io::Result<()> {
            Ok(())
        }
        async fn accept(&self, _l: &()) -> io::Result<(DuplexStream, IpAddr)> {
            std::future::pending().await
        }
    };
}
