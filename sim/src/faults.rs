//! Faults: what can go wrong in the world, and the scheduler that makes it
//! go wrong on time.

use std::net::IpAddr;
use std::time::Duration;

/// A fault of the plan. The network faults are between the relay and one
/// other host, since the relay is what is under test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    Partition(IpAddr),
    Repair(IpAddr),
    Hold(IpAddr),
    Release(IpAddr),
    Latency(IpAddr, Duration),
    /// Crash the relay while a spool write is under way (or, `queued`, while
    /// a message waits for a retry), or at the latest `within` later; restart
    /// it `down` later.
    Crash {
        within: Duration,
        down: Duration,
        queued: bool,
    },
    /// The exchanger answers every connection with 421 (`true`), or no
    /// longer (`false`).
    ExchangerFails(IpAddr, bool),
}
