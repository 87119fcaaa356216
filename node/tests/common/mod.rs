//! Ports the node tests do not exercise: no exchanger for any domain, and
//! local mailboxes that take everything.

// Each test binary uses the ports it needs.
#![allow(dead_code)]

use std::net::SocketAddr;

use relayguard_core::{Domain, Message};
use relayguard_node::{DeliverError, Mailboxes, Resolver};

pub struct NoRoutes;
impl Resolver for NoRoutes {
    async fn resolve(&self, _d: &Domain) -> Vec<SocketAddr> {
        Vec::new()
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
