//! What the node remembers about client addresses across their
//! connections, as Postfix's anvil does: failed AUTH attempts (with a
//! refusal window once they pass `limits.auth_failures_per_ip`) and the
//! connections of the last minute (`limits.connections_per_ip_per_minute`).
//!
//! The table is bounded: at most [`ANVIL_SIZE`] addresses, and when a new
//! one comes the one touched longest ago is forgotten. Only ordered maps,
//! so that nothing depends on hashing.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

/// Addresses remembered at most. A forgotten address starts again from
/// nothing, which only an attacker with this many addresses can arrange.
pub const ANVIL_SIZE: usize = 4096;

/// One address's record.
#[derive(Debug, Default)]
struct Record {
    /// Failed AUTH attempts since the count last started.
    failures: u64,
    last_failure: Duration,
    /// When the connections of the last minute were admitted, oldest first.
    connections: VecDeque<Duration>,
    /// The key of this record in `by_age`.
    touched: u64,
}

/// The table.
#[derive(Debug, Default)]
pub struct Anvil {
    records: BTreeMap<IpAddr, Record>,
    /// Touch order: the smallest key was touched longest ago.
    by_age: BTreeMap<u64, IpAddr>,
    next: u64,
}

const MINUTE: Duration = Duration::from_secs(60);

impl Anvil {
    /// The record of `ip`, made (and the oldest forgotten) if need be, and
    /// marked as touched now.
    fn touch(&mut self, ip: IpAddr) -> &mut Record {
        self.next += 1;
        let seq = self.next;
        if !self.records.contains_key(&ip) && self.records.len() >= ANVIL_SIZE {
            if let Some((_, old)) = self.by_age.pop_first() {
                self.records.remove(&old);
            }
        }
        let r = self.records.entry(ip).or_default();
        self.by_age.remove(&r.touched);
        r.touched = seq;
        self.by_age.insert(seq, ip);
        r
    }

    /// Counts `n` failed AUTH attempts from `ip` at `now`. The count starts
    /// again when the last failure is older than `window`.
    pub fn auth_failed(&mut self, ip: IpAddr, now: Duration, n: u64, window: Duration) {
        let r = self.touch(ip);
        if now.saturating_sub(r.last_failure) >= window {
            r.failures = 0;
        }
        r.failures += n;
        r.last_failure = now;
    }

    /// Whether `ip` has made `limit` failed attempts or more, the last
    /// within `window` of `now`.
    pub fn auth_refused(&self, ip: IpAddr, now: Duration, limit: u64, window: Duration) -> bool {
        self.records
            .get(&ip)
            .is_some_and(|r| r.failures >= limit && now.saturating_sub(r.last_failure) < window)
    }

    /// A connection from `ip` at `now`: admitted (and counted) if fewer
    /// than `per_minute` were admitted in the minute before.
    pub fn connect(&mut self, ip: IpAddr, now: Duration, per_minute: u64) -> bool {
        let r = self.touch(ip);
        while r
            .connections
            .front()
            .is_some_and(|&t| now.saturating_sub(t) >= MINUTE)
        {
            r.connections.pop_front();
        }
        if r.connections.len() as u64 >= per_minute {
            return false;
        }
        r.connections.push_back(now);
        true
    }

    /// Addresses remembered now.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no address is remembered.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(n.into())
    }

    const W: Duration = Duration::from_secs(600);

    #[test]
    fn failures_outlive_the_connection_and_the_window_ends_the_refusal() {
        let mut a = Anvil::default();
        let s = Duration::from_secs;
        for t in 0..9 {
            a.auth_failed(ip(1), s(t), 1, W);
            assert!(!a.auth_refused(ip(1), s(t), 10, W));
        }
        a.auth_failed(ip(1), s(9), 1, W);
        assert!(a.auth_refused(ip(1), s(9), 10, W));
        assert!(a.auth_refused(ip(1), s(608), 10, W));
        assert!(!a.auth_refused(ip(2), s(9), 10, W));
        // The window passes: refused no more, and the count starts again.
        assert!(!a.auth_refused(ip(1), s(609), 10, W));
        a.auth_failed(ip(1), s(700), 1, W);
        assert!(!a.auth_refused(ip(1), s(700), 10, W));
    }

    #[test]
    fn connections_per_minute_are_limited_per_address() {
        let mut a = Anvil::default();
        let ms = Duration::from_millis;
        for i in 0..5 {
            assert!(a.connect(ip(1), ms(i * 100), 5));
        }
        assert!(!a.connect(ip(1), ms(600), 5));
        assert!(a.connect(ip(2), ms(600), 5));
        // A minute after the first, one slot is free again.
        assert!(a.connect(ip(1), ms(60_000), 5));
        assert!(!a.connect(ip(1), ms(60_050), 5));
    }

    #[test]
    fn the_table_is_bounded_and_forgets_the_oldest_first() {
        let mut a = Anvil::default();
        let t = Duration::ZERO;
        a.auth_failed(ip(0), t, 10, W);
        a.auth_failed(ip(1), t, 10, W);
        for n in 2..ANVIL_SIZE as u32 {
            a.connect(ip(n), t, 60);
        }
        // ip(0) touched again: ip(1) is now the oldest.
        a.auth_failed(ip(0), t, 1, W);
        assert_eq!(a.len(), ANVIL_SIZE);
        a.connect(ip(ANVIL_SIZE as u32), t, 60);
        assert_eq!(a.len(), ANVIL_SIZE);
        assert!(a.auth_refused(ip(0), t, 10, W));
        assert!(!a.auth_refused(ip(1), t, 10, W), "the oldest is forgotten");
    }
}
