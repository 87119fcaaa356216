//! The node: its ports, its policy, its clock and its connection count.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;

use relayguard_core::Policy;
use relayguard_core::check::buggify::Bug;

use crate::anvil::Anvil;
use crate::clock::Clock;
use crate::config::NodeConfig;
use crate::delivery::DestinationSlots;
use crate::ports::{Mailboxes, Net, Resolver, Spool, Tap};

pub struct Node<N, S, R, M, T> {
    pub(crate) policy: Arc<Policy>,
    pub(crate) config: NodeConfig,
    pub(crate) net: N,
    pub(crate) spool: S,
    pub(crate) resolver: R,
    pub(crate) mailboxes: M,
    pub(crate) tap: T,
    pub(crate) clock: Clock,
    pub(crate) connections: Cell<usize>,
    pub(crate) per_ip: RefCell<BTreeMap<IpAddr, usize>>,
    /// Failed AUTH and connection rate per client address, across
    /// connections.
    pub(crate) anvil: RefCell<Anvil>,
    /// Delivery rounds under way at once, each holding one body read back
    /// from the spool: `NodeConfig::max_deliveries`.
    pub(crate) deliveries: tokio::sync::Semaphore,
    /// Outbound connection slots per destination domain.
    pub(crate) destinations: DestinationSlots,
}

impl<N: Net, S: Spool, R: Resolver, M: Mailboxes, T: Tap> Node<N, S, R, M, T> {
    pub fn new(
        policy: Arc<Policy>,
        config: NodeConfig,
        net: N,
        spool: S,
        resolver: R,
        mailboxes: M,
        tap: T,
    ) -> Rc<Self> {
        Rc::new(Node {
            policy,
            net,
            spool,
            resolver,
            mailboxes,
            tap,
            clock: Clock::start(),
            connections: Cell::new(0),
            per_ip: RefCell::new(BTreeMap::new()),
            anvil: RefCell::new(Anvil::default()),
            deliveries: tokio::sync::Semaphore::new(config.max_deliveries.max(1)),
            destinations: DestinationSlots::default(),
            config,
        })
    }

    pub(crate) fn bug(&self, bug: Bug) -> bool {
        self.policy.bugs().has(bug)
    }

    pub fn tap(&self) -> &T {
        &self.tap
    }

    /// Connections being served now; a graceful stop waits for zero.
    pub fn connections(&self) -> usize {
        self.connections.get()
    }

    /// A queue event, for the tap and the log.
    pub(crate) fn note(&self, what: &str) {
        tracing::debug!(target: "relayguard_node", "{what}");
        self.tap.event(what);
    }
}
