//! The wire checker: core's oracle on every session of the relay.
//!
//! The tap feeds each session's bytes both to an [`Oracle`], which judges
//! every reply against what the relay may do for that client, and to a
//! [`Recorder`], so that the first faulted session can be written out as a
//! corpus transcript and replayed without the simulation.

use std::net::{IpAddr, SocketAddr};
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
    /// The socket's peer with its port, when the relay's accept said it:
    /// how the proxy host's connections are told apart.
    pub(crate) socket: Option<SocketAddr>,
    /// The replies before the client's first octet (the greeting), and
    /// whether that octet came: see [`judge_by_truth`].
    pub(crate) early: Vec<u8>,
    /// The client a PROXY header named, as the relay took it.
    pub(crate) named: Option<IpAddr>,
    pub(crate) client_spoke: bool,
    /// The pieces of the body being received: the node streams bodies to
    /// its spool, and the oracle judges the whole body it handed on.
    pub(crate) body: Vec<u8>,
}

impl Watch {
    pub(crate) fn new(config: &Config, peer: IpAddr, socket: Option<SocketAddr>) -> Watch {
        Watch {
            oracle: Oracle::new(config, peer),
            // A placeholder: a transcript must name a configuration, and the
            // CLI replaces it with the one it writes beside the transcript.
            recorder: Recorder::new(peer, Some(PathBuf::from("../configs/sim.toml"))),
            peer,
            socket,
            early: Vec::new(),
            named: None,
            client_spoke: false,
            body: Vec::new(),
        }
    }
}

/// At the client's first octet: when the world knows the session carries
/// another client than its socket's peer (a proxy forwarded it) and that
/// peer is no proxy the configuration trusts, the relay had no way to learn
/// who the client is, and it is judged by who the client really is. That is
/// the Docker mistake: the proxy's own address is in the LAN, so the relay,
/// and an oracle that believed the socket, would take every client for a
/// LAN host.
pub(crate) fn judge_by_truth(w: &mut World, conn: u64) {
    let truth = w.client_of(conn);
    let Some(x) = w.watches.get_mut(&conn) else {
        return;
    };
    if std::mem::replace(&mut x.client_spoke, true) {
        return;
    }
    let Some(truth) = truth.filter(|&t| t != x.peer) else {
        return;
    };
    let peer = x.peer;
    let view = relayguard_core::check::oracle::ConfigView::new(&w.config);
    if view.may_proxy(peer) {
        return;
    }
    let Some(x) = w.watches.get_mut(&conn) else {
        return;
    };
    x.oracle = Oracle::with_view_socket(std::sync::Arc::new(view), truth, truth);
    x.oracle.server_bytes(&x.early);
}

/// The session is over: the oracle's verdict goes into the run, and the
/// first faulted session is kept as the run's offending transcript.
pub(crate) fn finish(w: &mut World, conn: u64) {
    let client = w.client_of(conn);
    let Some(x) = w.watches.remove(&conn) else {
        return;
    };
    let mut from = match client {
        Some(c) if c != x.peer => format!("{} (the proxy, for {c})", x.peer),
        _ => x.peer.to_string(),
    };
    if let Some(n) = x.named.filter(|&n| Some(n) != client) {
        from.push_str(&format!(" (which named {n} in a PROXY header)"));
    }
    let verdict = x.oracle.finish();
    w.stats.relay_refused += verdict.stats.relay_refused as u64;
    if !verdict.violations.is_empty() {
        for v in &verdict.violations {
            w.violation(
                Kind::Wire(v.kind),
                format!("wire oracle, session {conn} from {from}: {v}"),
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
