//! The wire checker: core's oracle on every session of the relay.
//!
//! The tap feeds each session's bytes both to an [`Oracle`], which judges
//! every reply against what the relay may do for that client, and to a
//! [`Recorder`], so that the first faulted session can be written out as a
//! corpus transcript and replayed without the simulation.

use std::net::IpAddr;
use std::path::PathBuf;

use relayguard_core::Config;
use relayguard_core::check::oracle::Oracle;
use relayguard_core::check::record::Recorder;
use relayguard_core::check::transcript;

use crate::checkers::Kind;
use crate::world::World;

/// One open session of the relay under judgement.
pub(crate) struct Watch {
    pub(crate) oracle: Oracle,
    pub(crate) recorder: Recorder,
    pub(crate) peer: IpAddr,
    /// The pieces of the body being received: the node streams bodies to
    /// its spool, and the oracle judges the whole body it handed on.
    pub(crate) body: Vec<u8>,
}

impl Watch {
    pub(crate) fn new(config: &Config, peer: IpAddr) -> Watch {
        Watch {
            oracle: Oracle::new(config, peer),
            // A placeholder: a transcript must name a configuration, and the
            // CLI replaces it with the one it writes beside the transcript.
            recorder: Recorder::new(peer, Some(PathBuf::from("../configs/sim.toml"))),
            peer,
            body: Vec::new(),
        }
    }
}

/// The session is over: the oracle's verdict goes into the run, and the
/// first faulted session is kept as the run's offending transcript.
pub(crate) fn finish(w: &mut World, conn: u64) {
    let Some(x) = w.watches.remove(&conn) else {
        return;
    };
    let verdict = x.oracle.finish();
    w.stats.relay_refused += verdict.stats.relay_refused as u64;
    if !verdict.violations.is_empty() {
        for v in &verdict.violations {
            w.violation(
                Kind::Wire(v.kind),
                format!("wire oracle, session {conn} from {}: {v}", x.peer),
            );
        }
        if w.offending.is_none() {
            let mut t = x.recorder.finish();
            t.expect = Some(transcript::Expect::Closed);
            w.offending = Some(t);
        }
    }
}

/// Judges the sessions still open when the run ends, in connection order.
pub(crate) fn finish_all(w: &mut World) {
    let conns: Vec<u64> = w.watches.keys().copied().collect();
    for c in conns {
        finish(w, c);
    }
}
