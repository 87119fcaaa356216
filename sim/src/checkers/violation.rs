//! What a checker found, typed: tests and tools match on the kind, people
//! read the text.

use std::fmt;

use relayguard_core::check::ViolationKind;

/// Which rule a run broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The wire oracle faulted a session of the relay.
    Wire(ViolationKind),
    /// A message from an untrusted client reached a foreign exchanger.
    OpenRelay,
    /// A message (or a bounce of one) arrived that no client submitted.
    Phantom,
    /// A message acknowledged with `250` neither arrived nor bounced.
    Loss,
    /// A message arrived with a body other than the one its client sent.
    Corruption,
    /// A message reached a recipient more often than the at-least-once
    /// window allows.
    Duplicate,
    /// Legitimate mail was refused or never accepted.
    Liveness,
    /// Messages were still queued when the run ended.
    Stuck,
    /// A command line not complete within `command_timeout_secs` of its
    /// first octet, and the session still open.
    CommandDeadline,
    /// `DATA` slower than its deadline allows, and the session still open.
    DataDeadline,
    /// A session open longer than `session_timeout_secs`.
    SessionLifetime,
    /// The relay read from a client before the pause after a failed AUTH.
    AuthPause,
    /// One address heard `535` more often than its limit allows.
    AuthThrottle,
    /// The simulation itself failed (a host panicked, the world errored).
    Harness,
}

impl Kind {
    /// Liveness (legitimate mail got through, in the quiet after the heal
    /// and under attack), as opposed to safety (nothing that must not
    /// happen did): reported apart, since a liveness failure can be the
    /// harness's bound and a safety failure never is.
    pub fn is_liveness(self) -> bool {
        matches!(self, Kind::Liveness)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Wire(k) => write!(f, "wire: {k}"),
            Kind::OpenRelay => f.write_str("open relay end to end"),
            Kind::Phantom => f.write_str("phantom"),
            Kind::Loss => f.write_str("loss"),
            Kind::Corruption => f.write_str("corruption"),
            Kind::Duplicate => f.write_str("duplicate"),
            Kind::Liveness => f.write_str("liveness"),
            Kind::Stuck => f.write_str("stuck"),
            Kind::CommandDeadline => f.write_str("command deadline"),
            Kind::DataDeadline => f.write_str("data deadline"),
            Kind::SessionLifetime => f.write_str("session lifetime"),
            Kind::AuthPause => f.write_str("no auth pause"),
            Kind::AuthThrottle => f.write_str("no auth throttle"),
            Kind::Harness => f.write_str("harness"),
        }
    }
}

/// One broken rule: its kind, and the sentence that says where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub kind: Kind,
    pub text: String,
    /// Simulated time since the start of the run: how fast the seed fails
    /// (a fleet replays the fastest-failing seeds first).
    pub at: std::time::Duration,
}

impl Violation {
    pub(crate) fn new(kind: Kind, text: String, at: std::time::Duration) -> Violation {
        Violation { kind, text, at }
    }
}

/// The sentence alone (it already names what broke).
impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
