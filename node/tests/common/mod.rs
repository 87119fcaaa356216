//! Ports the node tests do not exercise: no exchanger for any domain, and
//! local mailboxes that take everything.

// Each test binary uses the ports it needs.
#![allow(dead_code)]

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};

use relayguard_core::{Domain, Message};
use relayguard_node::{DeliverError, Mailboxes, Net, Resolver};
use tokio::io::DuplexStream;

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
