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
