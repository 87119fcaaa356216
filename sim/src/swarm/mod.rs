//! The swarm: everything a seed decides before the run starts.
//!
//! As in FoundationDB's and TigerBeetle's simulators, the seed does not only
//! drive the faults: it draws the relay's configuration, which actors exist
//! and what they send, so that the campaign explores configurations no one
//! wrote a test for. Every draw happens here, up front, on one stream; the
//! run only replays the plan, so `relayguard sim --seed N` can print a seed's
//! world before running it.

mod attacks;
mod config;
mod hostile;
mod proxy;
mod storage;
mod tls;

pub use proxy::{Proxying, Scenario};

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use relayguard_core::check::buggify::Bugs;
use relayguard_core::check::oracle;
use relayguard_core::client::Job;

use crate::faults::Fault;
use crate::options::{
    BACKUP, CHUNKING_SALT, CLIENT_TIMEOUT, FOREIGN, HELD_BODY_MAX, HELD_SALT, SWARM_SALT, USERS,
};
use crate::rng::Rng;

/// A seed's world: configuration, actors, faults.
#[derive(Clone, Debug)]
pub struct Swarm {
    pub config: relayguard_core::Config,
    pub lan_hosts: Vec<IpAddr>,
    /// Foreign domain → its mail exchanger's address.
    pub exchangers: BTreeMap<String, IpAddr>,
    /// The foreign domains whose exchanger offers STARTTLS.
    pub tls_exchangers: BTreeSet<String>,
    /// The exchangers that do not offer CHUNKING: the relay's client sends
    /// them the body with DATA, and with BDAT to the others.
    pub plain_exchangers: BTreeSet<IpAddr>,
    pub actors: Vec<Actor>,
    /// Each actor's random stream, by position in `actors`: its index when
    /// drawn, kept when the shrinker removes other actors, so that the
    /// ones left do what they did.
    pub streams: Vec<u64>,
    /// Sorted by time.
    pub faults: Vec<(Duration, Fault)>,
    /// Injected bugs switched on in the relay under test.
    pub bugs: Bugs,
    /// Whether outsiders come through a proxy host, and how it names them.
    pub proxying: Proxying,
    /// How much of a body the relay holds in memory before it writes it
    /// into the spool (`NodeConfig::held_body_max`).
    pub held_body_max: usize,
}

/// Who an actor is, which decides what it may legitimately do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// A host in the configured LAN: may relay, depending on its sender.
    Lan,
    /// Outside, authenticating: may relay if its user has the right.
    RemoteUser,
    /// Outside, sending to local mailboxes: must be accepted.
    Outsider,
    /// Replays `corpus/attacks`: every one must find the relay closed.
    CorpusSpammer,
    /// Sends generated relay attacks, with smuggling in DATA.
    Spammer,
    /// Sends generated BDAT tricks: a bare CR or LF in a chunk, a chunk
    /// declared longer than its body hiding a foreign RCPT, BDAT then DATA.
    ChunkSpammer,
    /// Opens many connections at once and holds them.
    Flooder,
    /// Sends EHLO a byte at a time, then goes silent.
    Slow,
    /// Slowloris: several connections, each sending one octet every few
    /// seconds of a command line or a message, reconnecting when cut.
    Trickler,
    /// Pipelines NOOPs and never reads a reply.
    NonReader,
    /// Guesses passwords, reconnecting when cut off.
    Guesser,
    /// Pipelines commands behind STARTTLS (CVE-2011-0411).
    Injector,
}

#[derive(Clone, Debug)]
pub struct Actor {
    pub role: Role,
    pub ip: IpAddr,
    pub start: Duration,
    pub tasks: Vec<Task>,
    /// The proxy host it connects through, if any; the relay otherwise.
    pub via: Option<IpAddr>,
}

impl Actor {
    /// Where its connections go: the proxy it is behind, or the relay.
    pub(crate) fn entry(&self) -> IpAddr {
        self.via.unwrap_or(IpAddr::V4(crate::options::RELAY))
    }
}

#[derive(Clone, Debug)]
pub enum Task {
    /// A message by the core client, retried until accepted or refused.
    Send {
        id: String,
        job: Job,
        /// The relay must accept it: the delivery checker calls a refusal,
        /// or an acked message that never arrives, a violation.
        legit: bool,
        /// The oracle's view of whether the client may relay, computed here
        /// so that the end-to-end check does not need the session.
        trusted: bool,
        /// The first attempt drops the connection in the middle of DATA.
        cut: bool,
        /// The client uses STARTTLS when the relay offers it.
        starttls: bool,
    },
    /// Raw chunks, each followed by waiting for a reply.
    Raw {
        chunks: Vec<Vec<u8>>,
        /// The X-Sim-Id of a generated attack's message.
        id: Option<String>,
        /// A forged PROXY header sent straight to the relay (past any proxy)
        /// as soon as the connection opens, before the greeting, as a real
        /// proxy sends one.
        forged: Option<Vec<u8>>,
    },
    Flood {
        connections: usize,
        hold: Duration,
    },
    Slow,
    /// Slowloris over `connections` connections at once, in DATA (to
    /// `rcpt`) or in a command line.
    Trickle {
        connections: usize,
        in_data: bool,
        rcpt: String,
    },
    NeverRead,
    Guess {
        tries: u32,
    },
    /// `STARTTLS` and `injected` in one write, then the handshake, then
    /// silence for a while before `EHLO` over TLS: any reply in that
    /// silence answers the plain-text commands.
    Inject {
        injected: Vec<u8>,
    },
}

/// Derives a whole world from a seed, in the default scenario.
pub fn swarm(seed: u64, bugs: Bugs) -> Swarm {
    swarm_in(seed, bugs, Scenario::Default)
}

/// Derives a whole world from a seed, in `scenario`.
pub fn swarm_in(seed: u64, bugs: Bugs, scenario: Scenario) -> Swarm {
    let mut r = Rng::new(seed ^ SWARM_SALT);
    // The CHUNKING draws come from a stream of their own, so that adding
    // them moved none of the draws above.
    let mut c = Rng::new(seed ^ CHUNKING_SALT);
    let (mut config, lan_hosts) = config::draw(&mut r);
    let (proxying, mut pr) = proxy::draw(seed, scenario, &mut config);
    let local = config.domains.local.clone();

    let mut exchangers = BTreeMap::new();
    for (i, d) in FOREIGN.iter().chain(std::iter::once(&BACKUP)).enumerate() {
        exchangers.insert(d.to_string(), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10 + i as u8)));
    }

    let mut actors = Vec::new();
    let mut next_id = 0u64;
    let mut id = || {
        next_id += 1;
        format!("{seed:x}-{next_id}")
    };
    let local_rcpt = |r: &mut Rng| format!("{}@{}", r.pick(&USERS), r.pick(&local));
    // LAN hosts.
    for &ip in &lan_hosts {
        let mut tasks = Vec::new();
        for _ in 0..1 + r.below(3) {
            let local_sender = r.chance(70);
            let from = if local_sender {
                format!("{}@{}", r.pick(&USERS), r.pick(&local))
            } else {
                format!("staff@{}", r.pick(&["home.example", "partner.example"]))
            };
            let outbound = r.chance(70);
            let rcpt = if outbound {
                if r.chance(15) {
                    "nobody@defunct.example".to_string()
                } else {
                    format!("{}@{}", r.pick(&["bob", "frank"]), r.pick(&FOREIGN[..3]))
                }
            } else {
                local_rcpt(&mut r)
            };
            let trusted = oracle::is_trusted(&config, ip, None, &from);
            let legit = !outbound || trusted;
            let mid = id();
            let mut job = job(&mid, &from, vec![rcpt], None, r.chance(20));
            job.chunking = c.chance(50);
            tasks.push(Task::Send {
                job,
                id: mid,
                legit,
                trusted,
                cut: r.chance(20),
                starttls: false,
            });
        }
        actors.push(Actor {
            role: Role::Lan,
            ip,
            start: r.millis(0, 20_000),
            tasks,
            via: None,
        });
    }
    let mut outside = 1u8;
    let mut next_outside = |r: &mut Rng| {
        outside += 1 + r.below(3) as u8;
        if outside % 2 == 0 {
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, outside))
        } else {
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, outside))
        }
    };
    // Remote users.
    for _ in 0..1 + r.below(2) {
        let ip = next_outside(&mut r);
        let (user, pw, right) = *r.pick(&[
            ("carol", "secret", true),
            ("carol", "secret", true),
            ("dave", "hunter2", false),
        ]);
        let from = format!("{user}@{}", local[0]);
        let rcpt = format!("bob@{}", r.pick(&FOREIGN[..3]));
        let trusted = oracle::is_trusted(&config, ip, Some(user), &from);
        let mid = id();
        let mut job = job(&mid, &from, vec![rcpt], Some((user, pw)), false);
        job.chunking = c.chance(50);
        actors.push(Actor {
            role: Role::RemoteUser,
            ip,
            start: r.millis(0, 20_000),
            tasks: vec![Task::Send {
                job,
                id: mid,
                legit: right,
                trusted,
                cut: false,
                starttls: false,
            }],
            via: None,
        });
    }
    // Outside senders to local mailboxes, and to unknown ones.
    for _ in 0..1 + r.below(2) {
        let ip = next_outside(&mut r);
        let unknown = r.chance(30);
        let rcpt = if unknown {
            format!("nosuchuser@{}", local[0])
        } else if r.chance(20) && !config.domains.relay_to.is_empty() {
            format!("someone@{BACKUP}")
        } else {
            local_rcpt(&mut r)
        };
        let legit = !unknown || config.domains.mailboxes.is_none();
        let mid = id();
        actors.push(Actor {
            role: Role::Outsider,
            ip,
            start: r.millis(0, 20_000),
            tasks: vec![Task::Send {
                job: job(&mid, "news@partner.example", vec![rcpt], None, false),
                id: mid,
                legit,
                trusted: false,
                cut: false,
                starttls: false,
            }],
            via: None,
        });
    }
    // Spammers replaying the corpus.
    let corpus = attacks::attacks();
    if !corpus.is_empty() {
        let ip = next_outside(&mut r);
        let mut tasks = Vec::new();
        for _ in 0..8 + r.below(16) {
            let (_, chunks) = r.pick(corpus);
            tasks.push(Task::Raw {
                chunks: chunks.clone(),
                id: None,
                forged: None,
            });
        }
        actors.push(Actor {
            role: Role::CorpusSpammer,
            ip,
            start: r.millis(0, 20_000),
            tasks,
            via: None,
        });
    }
    // Spammers with generated attacks.
    for _ in 0..1 + r.below(2) {
        let ip = next_outside(&mut r);
        let mut tasks = Vec::new();
        for _ in 0..4 + r.below(10) {
            tasks.push(attacks::generated_attack(&mut r, &config, &local, &id()));
        }
        actors.push(Actor {
            role: Role::Spammer,
            ip,
            start: r.millis(0, 25_000),
            tasks,
            via: None,
        });
    }
    if r.chance(50) {
        actors.push(Actor {
            role: Role::Flooder,
            ip: next_outside(&mut r),
            start: r.millis(0, 20_000),
            tasks: vec![Task::Flood {
                connections: 12 + r.below(10) as usize,
                hold: r.millis(1_000, 8_000),
            }],
            via: None,
        });
    }
    if r.chance(50) {
        actors.push(Actor {
            role: Role::Slow,
            ip: next_outside(&mut r),
            start: r.millis(0, 10_000),
            tasks: vec![Task::Slow],
            via: None,
        });
    }

    hostile::draw(&mut r, &mut next_outside, &local, &mut actors);

    let faults = fault_plan(&mut r, &exchangers, &actors);
    let tls_exchangers = tls::draw(&mut r, &mut config, &mut next_outside, &exchangers, &mut actors);
    // Drawn after the faults, on their own stream: the actors and faults
    // above are the ones the seed drew before CHUNKING existed.
    let plain_exchangers = exchangers.values().copied().filter(|_| c.chance(50)).collect();
    if c.chance(70) {
        let ip = next_outside(&mut c);
        let tasks = (0..3 + c.below(6))
            .map(|_| attacks::chunk_attack(&mut c, &local, &id()))
            .collect();
        actors.push(Actor {
            role: Role::ChunkSpammer,
            ip,
            start: c.millis(0, 25_000),
            tasks,
            via: None,
        });
    }
    // Last, on the proxy's own stream: who goes through the proxy, and
    // which generated attacks forge a PROXY header past it.
    for a in &mut actors {
        let via = a.role != Role::Lan || proxy::lan_via_proxy(proxying, &mut pr);
        a.via = if via { proxying.host() } else { None };
        if a.role == Role::Spammer {
            proxy::forge_headers(&config, &mut a.tasks, &mut pr);
        }
    }
    Swarm {
        config,
        lan_hosts,
        exchangers,
        tls_exchangers,
        plain_exchangers,
        streams: (0..actors.len() as u64).collect(),
        actors,
        faults,
        bugs,
        proxying,
        held_body_max: *Rng::new(seed ^ HELD_SALT).pick(&HELD_BODY_MAX),
    }
}

/// The faults, drawn last: against the exchangers, against one actor's link,
/// and crashes of the relay. All start before 25 s, so that they are over or
/// lifted by the heal.
fn fault_plan(
    r: &mut Rng,
    exchangers: &BTreeMap<String, IpAddr>,
    actors: &[Actor],
) -> Vec<(Duration, Fault)> {
    let mut faults = Vec::new();
    let exch: Vec<IpAddr> = exchangers.values().copied().collect();
    for _ in 0..1 + r.below(4) {
        let at = r.millis(0, 25_000);
        let until = at + r.millis(1_000, 10_000);
        let ip = *r.pick(&exch);
        match r.below(4) {
            0 => {
                faults.push((at, Fault::Partition(ip)));
                faults.push((until, Fault::Repair(ip)));
            }
            1 => {
                faults.push((at, Fault::Hold(ip)));
                faults.push((until, Fault::Release(ip)));
            }
            2 => faults.push((at, Fault::Latency(ip, r.millis(20, 400)))),
            _ => {
                faults.push((at, Fault::ExchangerFails(ip, true)));
                faults.push((until, Fault::ExchangerFails(ip, false)));
            }
        }
    }
    if r.chance(50) && !actors.is_empty() {
        let ip = r.pick(actors).ip;
        let at = r.millis(0, 25_000);
        faults.push((at, Fault::Partition(ip)));
        faults.push((at + r.millis(500, 5_000), Fault::Repair(ip)));
    }
    faults.extend(storage::crashes(r));
    faults.extend(storage::disk_faults(r));
    faults.sort_by_key(|f| f.0);
    faults
}

fn job(id: &str, from: &str, rcpts: Vec<String>, auth: Option<(&str, &str)>, long: bool) -> Job {
    let mut body =
        format!("X-Sim-Id: {id}\r\nFrom: <{from}>\r\nSubject: hello\r\n\r\nHello.\r\n.dot line\r\n");
    if long {
        for i in 0..20 {
            body.push_str(&format!(
                "line {i} of a longer message, to be cut in the middle of DATA\r\n"
            ));
        }
    }
    Job {
        helo: "client.example".into(),
        auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
        mail_from: from.into(),
        rcpt_to: rcpts,
        body: body.into_bytes(),
        timeout: CLIENT_TIMEOUT,
        chunking: false,
        tls: Default::default(),
    }
}
