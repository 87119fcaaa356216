//! What a run hands back: the verdict, the figures, the hash, and what is
//! needed to reproduce and read a failing seed.

use std::collections::BTreeMap;

use relayguard_core::check::transcript::Transcript;

use crate::checkers::Violation;
use crate::swarm::Swarm;
use crate::world::Stats;

/// The result of one seed.
#[derive(Clone, Debug)]
pub struct Report {
    pub seed: u64,
    pub stats: Stats,
    pub violations: Vec<Violation>,
    /// Over every trace line, every byte the clients sent and every octet
    /// on the relay's connections (TLS records included), kept even
    /// when the trace is not: two runs with one hash did the same things in
    /// the same order, which is what a campaign compares across commits.
    pub hash: u64,
    /// The seed's configuration, actors and faults, one per line.
    pub describe: Vec<String>,
    /// Empty unless the run was verbose.
    pub trace: Vec<String>,
    /// The first session the wire oracle faulted, as a transcript.
    pub offending: Option<Transcript>,
    /// How many times each storage fault kind fired (`disk.rs`): a kind
    /// that never fires proves nothing.
    pub fired: BTreeMap<String, u64>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// What `--seed N` prints before the trace: a failing seed is read
/// against its world, and the world is not in the trace.
pub(crate) fn describe(s: &Swarm) -> Vec<String> {
    let c = &s.config;
    let mut out = vec![
        format!(
            "config: local {:?}, mailboxes {}, lan {:?}, require_auth {}, non_local_senders_in_lan {}, relay_to {:?}, percent_hack {}, black {:?}",
            c.domains.local,
            c.domains
                .mailboxes
                .as_ref()
                .map_or("any".to_string(), |m| format!("{}", m.len())),
            c.lan.networks,
            c.relay.require_auth,
            c.relay.non_local_senders_in_lan,
            c.domains.relay_to,
            c.relay.percent_hack,
            c.lists.black
        ),
        format!("exchangers: {:?}", s.exchangers),
        format!(
            "starttls: offered {}, auth requires tls {}, exchangers offering it {:?}",
            c.tls.cert.is_some(),
            c.auth_requires_tls(),
            s.tls_exchangers
        ),
        format!("proxying: {:?}, proxy {:?}", s.proxying, c.proxy),
        format!("held body max: {} octets", s.held_body_max),
    ];
    for a in &s.actors {
        let via = a.via.map(|p| format!(" via {p}")).unwrap_or_default();
        out.push(format!(
            "actor {:?} {}{via} at {:?}: {} tasks",
            a.role,
            a.ip,
            a.start,
            a.tasks.len()
        ));
    }
    for (at, f) in &s.faults {
        out.push(format!("fault at {at:?}: {f:?}"));
    }
    out
}
