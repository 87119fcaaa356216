//! Bugs that can be switched on inside the real code, to prove that the
//! checkers catch them (the simulation's and the fuzzers' "does it bite?").
//!
//! Each is a one-line change at the place it names, off unless a test or
//! `relayguard sim --buggify NAME` turns it on. They live in the shipped
//! code, not behind a cargo feature, so that the binary a user runs is the
//! one whose checkers were shown to work. They are never read from a
//! configuration file.

use std::fmt;

/// One injected bug: a deliberate flaw in the shipped code, off unless it
/// is in the [`Bugs`] of the running [`Policy`](crate::Policy), which the
/// node asks too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bug {
    /// The policy trusts routed addresses (`u%foreign@local`) from anyone.
    TrustRouted,
    /// The policy treats every client as inside the LAN when the sender is local.
    LanCheckOff,
    /// The session ends DATA at a bare `\n.\n` and treats bare LF as a line end.
    LfEndsData,
    /// The node acknowledges a message before the spool write completes.
    AckBeforeStore,
    /// The node forgets its spool when it restarts.
    ForgetSpoolOnRestart,
    /// The node bounces a recipient whose local delivery failed for a
    /// passing reason (a full disk, no descriptors left) instead of
    /// deferring it.
    BounceOnTransient,
    /// Recovery recovers nothing when one spool file is unreadable.
    RecoverAllOrNothing,
    /// The simulated spool draws queue ids from a counter that restarts
    /// with the process, so that ids repeat across restarts.
    ReuseQueueId,
    /// The node starts without taking the spool's lock, so that a second
    /// instance on the same spool delivers what the first delivers.
    NoSpoolLock,
    /// The simulation lets state of the process (a run counter) into a
    /// run's trace: the same seed no longer gives the same run.
    ProcessStateLeak,
    /// The session's command and DATA deadlines re-arm on every octet, as
    /// an idle timer does: a byte every few seconds holds a session open.
    IdleTimerRearms,
    /// The node writes replies without a deadline: a client that never
    /// reads holds its session for ever.
    NoWriteTimeout,
    /// No delay after a failed AUTH and no count of failures per address.
    NoAuthThrottle,
    /// XCLIENT is honoured from any address, whatever `proxy.trusted` and
    /// `proxy.xclient` say (and a transcript's `@proxy` header is believed
    /// from any proxy), and the node takes a PROXY header from anyone who
    /// sends one first (waiting a second for it before the greeting, so
    /// that clients that send none are still served): anyone may say it is
    /// inside.
    TrustAnyProxyHeader,
    /// The session keeps the octets pipelined after STARTTLS in plain text
    /// and runs them once TLS is up, as if they had come over TLS
    /// (CVE-2011-0411).
    KeepBufferAfterStarttls,
    /// A bare LF inside a BDAT chunk passes as a line end instead of
    /// refusing the message (`core/src/session/chunking.rs`): the next hop
    /// that gets the message by DATA may split it there.
    BdatBareLfPasses,
    /// A recipient whose delivery before the reply failed (a full disk, a
    /// failed fsync) is taken as delivered instead of queued.
    DropFailedEarlyDelivery,
}

impl Bug {
    /// Every bug, in declaration order.
    pub const ALL: [Bug; 17] = [
        Bug::TrustRouted,
        Bug::LanCheckOff,
        Bug::LfEndsData,
        Bug::AckBeforeStore,
        Bug::ForgetSpoolOnRestart,
        Bug::BounceOnTransient,
        Bug::RecoverAllOrNothing,
        Bug::ReuseQueueId,
        Bug::NoSpoolLock,
        Bug::ProcessStateLeak,
        Bug::IdleTimerRearms,
        Bug::NoWriteTimeout,
        Bug::NoAuthThrottle,
        Bug::TrustAnyProxyHeader,
        Bug::KeepBufferAfterStarttls,
        Bug::BdatBareLfPasses,
        Bug::DropFailedEarlyDelivery,
    ];

    /// The name that switches it on (`--buggify NAME`,
    /// `RELAYGUARD_BUGGIFY`).
    pub fn name(self) -> &'static str {
        match self {
            Bug::TrustRouted => "trust-routed",
            Bug::LanCheckOff => "lan-check-off",
            Bug::LfEndsData => "lf-ends-data",
            Bug::AckBeforeStore => "ack-before-store",
            Bug::ForgetSpoolOnRestart => "forget-spool-on-restart",
            Bug::BounceOnTransient => "bounce-on-transient",
            Bug::RecoverAllOrNothing => "recover-all-or-nothing",
            Bug::ReuseQueueId => "reuse-queue-id",
            Bug::NoSpoolLock => "no-spool-lock",
            Bug::ProcessStateLeak => "process-state-leak",
            Bug::IdleTimerRearms => "idle-timer-rearms",
            Bug::NoWriteTimeout => "no-write-timeout",
            Bug::NoAuthThrottle => "no-auth-throttle",
            Bug::TrustAnyProxyHeader => "trust-any-proxy-header",
            Bug::KeepBufferAfterStarttls => "keep-buffer-after-starttls",
            Bug::BdatBareLfPasses => "bdat-bare-lf-passes",
            Bug::DropFailedEarlyDelivery => "drop-failed-early-delivery",
        }
    }

    /// The bug with this [`Bug::name`], if any.
    pub fn from_name(name: &str) -> Option<Bug> {
        Bug::ALL.into_iter().find(|b| b.name() == name)
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of switched-on bugs; empty by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Bugs(u32);

impl Bugs {
    /// No bug: what a real server runs with.
    pub const NONE: Bugs = Bugs(0);

    /// This set, with `bug` switched on as well.
    pub fn with(self, bug: Bug) -> Bugs {
        Bugs(self.0 | 1 << bug as u8)
    }

    /// Whether `bug` is switched on.
    pub fn has(self, bug: Bug) -> bool {
        self.0 & (1 << bug as u8) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sets_hold_what_was_added() {
        for b in Bug::ALL {
            assert_eq!(Bug::from_name(b.name()), Some(b));
            let set = Bugs::NONE.with(b);
            assert!(set.has(b));
            assert_eq!(Bug::ALL.iter().filter(|&&x| set.has(x)).count(), 1);
        }
        assert_eq!(Bug::from_name("nope"), None);
    }
}
