//! The world's shared state: what the hosts did, as the checkers need it,
//! and the trace.
//!
//! Turmoil runs every host on one thread, so the state is one
//! `Rc<RefCell<World>>` that the relay's backends, the exchangers and the
//! actors all hold. Nothing in it decides anything: the backends and actors
//! record, the checkers (`checkers/`) judge.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use relayguard_core::Config;
use relayguard_core::check::transcript::Transcript;

use crate::checkers::wire::Watch;
use crate::checkers::{Kind, Violation, delivery};
use crate::disk::{DiskFaults, MailState, SpoolState};
use crate::rng::{FNV0, fnv};

/// A message a client tried to hand over, and how that went.
#[derive(Clone, Debug, Default)]
pub(crate) struct Submission {
    pub(crate) trusted: bool,
    pub(crate) legit: bool,
    pub(crate) acked: bool,
    pub(crate) refused: Option<String>,
    /// Recipients answered 2xx in the accepted attempt.
    pub(crate) accepted: Vec<String>,
    /// When the client first tried, and when the relay accepted it: for
    /// liveness under attack.
    pub(crate) first_try: Option<Duration>,
    pub(crate) acked_at: Option<Duration>,
}

/// A message that reached a mailbox of the relay or a foreign exchanger.
#[derive(Clone, Debug)]
pub(crate) struct Arrival {
    pub(crate) rcpts: Vec<String>,
    /// Its X-Sim-Id; `None` for a bounce.
    pub(crate) id: Option<String>,
    /// For a bounce, the X-Sim-Id of the message it bounces ("" if the
    /// bounce quotes none).
    pub(crate) bounce_of: Option<String>,
    /// So that a corpus spammer's message, which carries no X-Sim-Id, can
    /// still be told from a smuggled one.
    pub(crate) body_hash: u64,
}

/// Everything the hosts share (turmoil runs them on one thread).
pub(crate) struct World {
    /// The simulation's time, for events outside the hosts.
    pub(crate) now: Duration,
    pub(crate) config: Config,
    /// The relay's spool and mailboxes. They live in the world, not in
    /// the relay host, so that they survive the relay's crash as a disk
    /// would (`disk.rs`).
    pub(crate) spool: SpoolState,
    pub(crate) mail: MailState,
    pub(crate) disk: DiskFaults,
    /// How many times each fault kind fired (`disk.rs`, `faults.rs`).
    pub(crate) fired: BTreeMap<String, u64>,
    /// X-Sim-Id → the hash of the body its client sends, for the
    /// corruption check.
    pub(crate) bodies: BTreeMap<String, u64>,
    /// X-Sim-Id → how many times the relay stored it durably (a client
    /// that did not hear the `250` sends again: each copy may arrive).
    pub(crate) stored: BTreeMap<String, u64>,
    /// X-Sim-Id → further arrivals the at-least-once window allows: one
    /// per crash that found it delivered and still queued, one per round
    /// that deferred it after an exchanger had taken it.
    pub(crate) excused: BTreeMap<String, u64>,
    /// Queue ids delivered to someone since their spool file was last
    /// written: the crash-after-delivery fault waits for one.
    pub(crate) unrecorded: BTreeSet<String>,
    /// X-Sim-Ids queued and not yet arrived when the relay crashed: one
    /// that arrives before the restart was in flight, and is excused once.
    pub(crate) in_flight_at_crash: BTreeSet<String>,
    pub(crate) submissions: BTreeMap<String, Submission>,
    pub(crate) arrivals: Vec<Arrival>,
    pub(crate) corpus_ips: BTreeSet<IpAddr>,
    /// Bodies the relay accepted from corpus spammers: if one arrives, it is
    /// the relay delivering what it was allowed to accept, not smuggling.
    pub(crate) corpus_bodies: BTreeSet<u64>,
    /// Exchangers answering 421.
    pub(crate) failing: BTreeSet<IpAddr>,
    /// Open sessions of the relay, each with its wire checker.
    pub(crate) watches: BTreeMap<u64, Watch>,
    /// The proxy host's connections to the relay (its address and port)
    /// → the client each carries (`proxy.rs`).
    pub(crate) behind_proxy: BTreeMap<SocketAddr, IpAddr>,
    /// Connections the relay accepted and has not yet told the tap of, in
    /// order: the tap learns only the peer's address, this its port.
    pub(crate) accepted: VecDeque<SocketAddr>,
    pub(crate) next_conn: u64,
    pub(crate) violations: Vec<Violation>,
    pub(crate) offending: Option<Transcript>,
    pub(crate) hash: u64,
    pub(crate) trace: Option<Vec<String>>,
    pub(crate) stats: Stats,
    /// The hostile-peers checker's view of the sessions.
    pub(crate) hostile: crate::checkers::hostile::Hostile,
    /// The run's certificates and seeded TLS configs.
    pub(crate) tls: crate::tls::SimTls,
    /// Which exchangers sleep, and who keeps them awake (`naps.rs`).
    pub(crate) naps: crate::naps::Naps,
}

/// Figures of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub sessions: u64,
    pub messages: u64,
    pub relay_refused: u64,
    pub deliveries: u64,
}

pub(crate) type Shared = Rc<RefCell<World>>;

/// The simulated time inside a host (zero outside one).
pub(crate) fn elapsed() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

impl World {
    /// `verbose` keeps the trace lines; the hash is kept either way, so that
    /// a campaign's hashes and a single seed's agree.
    pub(crate) fn new(
        config: Config,
        corpus_ips: BTreeSet<IpAddr>,
        verbose: bool,
        tls: crate::tls::SimTls,
    ) -> World {
        World {
            now: Duration::ZERO,
            config,
            spool: SpoolState::default(),
            mail: MailState::default(),
            disk: DiskFaults::default(),
            fired: BTreeMap::new(),
            bodies: BTreeMap::new(),
            stored: BTreeMap::new(),
            excused: BTreeMap::new(),
            unrecorded: BTreeSet::new(),
            in_flight_at_crash: BTreeSet::new(),
            submissions: BTreeMap::new(),
            arrivals: Vec::new(),
            corpus_ips,
            corpus_bodies: BTreeSet::new(),
            failing: BTreeSet::new(),
            watches: BTreeMap::new(),
            behind_proxy: BTreeMap::new(),
            accepted: VecDeque::new(),
            next_conn: 0,
            violations: Vec::new(),
            offending: None,
            hash: FNV0,
            trace: verbose.then(Vec::new),
            stats: Stats::default(),
            hostile: Default::default(),
            tls,
            naps: Default::default(),
        }
    }

    /// The simulated time: inside a host, its clock; outside, the run's.
    pub(crate) fn now_in_host(&self) -> Duration {
        turmoil::sim_elapsed().unwrap_or(self.now)
    }

    /// Who is really behind session `conn`: the client the proxy host
    /// carries on it, else its socket's peer. The relay may have been told
    /// otherwise (or nothing); the checkers go by this.
    pub(crate) fn client_of(&self, conn: u64) -> Option<IpAddr> {
        let x = self.watches.get(&conn)?;
        Some(
            x.socket
                .and_then(|s| self.behind_proxy.get(&s).copied())
                .unwrap_or(x.peer),
        )
    }

    /// One line of the trace, hashed: the hash is how two runs of a seed
    /// are shown to be the same run.
    pub(crate) fn event(&mut self, what: &str) {
        let at = turmoil::sim_elapsed().unwrap_or(self.now);
        let line = format!("{:>9.3} {what}", at.as_secs_f64());
        self.hash = fnv(self.hash, line.as_bytes());
        if let Some(t) = &mut self.trace {
            t.push(line);
        }
    }

    /// A violation goes into the trace too, so that it shows where it
    /// happened among the events.
    pub(crate) fn violation(&mut self, kind: Kind, text: String) {
        self.event(&format!("VIOLATION {text}"));
        let at = turmoil::sim_elapsed().unwrap_or(self.now);
        self.violations.push(Violation::new(kind, text, at));
    }

    /// A message reached `at` (a relay mailbox or an exchanger): recorded,
    /// and judged end to end on the spot.
    pub(crate) fn arrive(&mut self, at: String, rcpts: Vec<String>, from_null: bool, body: &[u8]) {
        let text = String::from_utf8_lossy(body);
        let header = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        let id = sim_id(body);
        // A bounce is from <> and names the queue id it bounces; the
        // message's own X-Sim-Id is among the headers it quotes.
        let is_bounce = from_null && header("X-Bounce-Of:").is_some();
        let bounce_of = if is_bounce {
            Some(id.clone().unwrap_or_default())
        } else {
            None
        };
        let arrival = Arrival {
            rcpts: rcpts.iter().map(|r| r.to_ascii_lowercase()).collect(),
            id: if is_bounce { None } else { id.clone() },
            bounce_of,
            body_hash: fnv(FNV0, body),
        };
        self.stats.deliveries += 1;
        if let Some(id) = arrival
            .id
            .as_ref()
            .filter(|id| self.in_flight_at_crash.remove(*id))
        {
            *self.excused.entry(id.clone()).or_insert(0) += 1;
        }
        self.event(&format!(
            "arrival at {at} for {rcpts:?} id {id:?} bounce {is_bounce}"
        ));
        delivery::judge_arrival(self, &arrival, &at, &rcpts);
        self.arrivals.push(arrival);
    }
}

/// A message's X-Sim-Id: the first such header line.
pub(crate) fn sim_id(body: &[u8]) -> Option<String> {
    String::from_utf8_lossy(body)
        .lines()
        .find_map(|l| l.strip_prefix("X-Sim-Id:").map(|v| v.trim().to_string()))
}
