//! relayguard-sim: the relay node in a turmoil world of LAN hosts, remote
//! users, outside senders, spammers and foreign mail exchangers, with faults,
//! judged by oracles. One seed decides everything: the configuration, the
//! actors, the faults and every draw they make (VOPR / FoundationDB style).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use relayguard_core::address::Domain;
use relayguard_core::buggify::Bugs;
use relayguard_core::client::{Client, Job, MessageResult, RcptResult};
use relayguard_core::config::{Config, User};
use relayguard_core::oracle::{self, Oracle};
use relayguard_core::policy::Policy;
use relayguard_core::record::Recorder;
use relayguard_core::session::{Message, Peer, Session};
use relayguard_core::transcript::{self, Step, Transcript};
use relayguard_node::{Clock, Entry, Mailboxes, Net, Node, NodeConfig, Resolver, Spool, Tap};
use relayguard_node::{DeliverError, StoreError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const RELAY: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 25);
const PORT: u16 = 25;
/// When the faults stop and the world heals.
const HEAL_AT: Duration = Duration::from_secs(30);
/// The latest the run goes on after the heal.
const END_AT: Duration = Duration::from_secs(150);
/// Actors stop retrying at this time.
const GIVE_UP_AT: Duration = Duration::from_secs(110);
const TICK: Duration = Duration::from_millis(20);

/// splitmix64: small, seedable, the same everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi.saturating_sub(lo).max(1)))
    }
}

/// FNV-1a, for the trace hash.
fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

const FNV0: u64 = 0xcbf2_9ce4_8422_2325;

// ---------------------------------------------------------------- the swarm

const FOREIGN: [&str; 4] = [
    "foreign.example",
    "nmap.scanme.org",
    "partner.example",
    "defunct.example",
];
const BACKUP: &str = "backup.example.org";
const USERS: [&str; 4] = ["alice", "bob", "postmaster", "erin"];

/// A seed's world: configuration, actors, faults.
#[derive(Clone, Debug)]
pub struct Swarm {
    pub config: Config,
    pub lan_hosts: Vec<IpAddr>,
    pub exchangers: BTreeMap<String, IpAddr>,
    pub actors: Vec<Actor>,
    pub faults: Vec<(Duration, Fault)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Lan,
    RemoteUser,
    Outsider,
    CorpusSpammer,
    Spammer,
    Flooder,
    Slow,
}

#[derive(Clone, Debug)]
pub struct Actor {
    pub role: Role,
    pub ip: IpAddr,
    pub start: Duration,
    pub tasks: Vec<Task>,
}

#[derive(Clone, Debug)]
pub enum Task {
    /// A message by the core client, retried until accepted or refused.
    Send {
        id: String,
        job: Job,
        legit: bool,
        trusted: bool,
        /// The first attempt drops the connection in the middle of DATA.
        cut: bool,
    },
    /// Raw chunks, each followed by waiting for a reply.
    Raw {
        chunks: Vec<Vec<u8>>,
        /// The X-Sim-Id of a generated attack's message.
        id: Option<String>,
    },
    Flood {
        connections: usize,
        hold: Duration,
    },
    Slow,
}

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
    ExchangerFails(IpAddr, bool),
}

/// Derives a whole world from a seed.
pub fn swarm(seed: u64, bugs: Bugs) -> Swarm {
    let mut r = Rng::new(seed ^ 0x05ee_d0f5_e1a7);
    let local: Vec<String> = match r.below(3) {
        0 => vec!["example.com".into()],
        1 => vec!["example.com".into(), "example.net".into()],
        _ => vec!["corp.example".into()],
    };
    let lan_shapes: [(&str, [u8; 4]); 4] = [
        ("192.168.1.0/24", [192, 168, 1, 0]),
        ("10.1.*.*", [10, 1, 7, 0]),
        ("10.2.3.10-20", [10, 2, 3, 10]),
        ("172.16.0.5", [172, 16, 0, 5]),
    ];
    let shape = *r.pick(&lan_shapes);
    let mut networks = vec![shape.0.to_string()];
    let mut lan_hosts = Vec::new();
    let n_lan = 1 + r.below(3) as u8;
    for i in 0..n_lan {
        let b = shape.1;
        let ip = match shape.0 {
            "172.16.0.5" => Ipv4Addr::new(172, 16, 0, 5),
            "10.2.3.10-20" => Ipv4Addr::new(10, 2, 3, 10 + i * 3),
            _ => Ipv4Addr::new(b[0], b[1], b[2], 10 + i),
        };
        if !lan_hosts.contains(&IpAddr::V4(ip)) {
            lan_hosts.push(IpAddr::V4(ip));
        }
    }
    if r.chance(30) {
        networks.push("192.168.50.0/24".into());
        lan_hosts.push(IpAddr::V4(Ipv4Addr::new(192, 168, 50, 7)));
    }
    let mut config = Config {
        hostname: format!("mail.{}", local[0]),
        own_addresses: vec![IpAddr::V4(RELAY)],
        ..Config::default()
    };
    config.domains.local = local.clone();
    if r.chance(60) {
        config.domains.mailboxes = Some(
            local
                .iter()
                .flat_map(|d| USERS.iter().map(move |u| format!("{u}@{d}")))
                .collect(),
        );
    }
    if r.chance(50) {
        config.domains.relay_to = vec![BACKUP.into()];
    }
    config.lan.networks = networks;
    config.relay.require_auth = r.chance(20);
    config.relay.non_local_senders_in_lan = r.chance(70);
    config.relay.percent_hack = r.chance(30);
    config.auth.users = vec![
        User {
            name: "carol".into(),
            password: "secret".into(),
            relay: true,
        },
        User {
            name: "dave".into(),
            password: "hunter2".into(),
            relay: false,
        },
    ];
    if r.chance(40) {
        config.lists.black = vec!["203.0.113.240/28".into(), "*@spam.example".into()];
    }
    config.limits.command_timeout_secs = 20 + r.below(20);
    config.limits.data_timeout_secs = 30;
    config.bugs = bugs;

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
            tasks.push(Task::Send {
                job: job(&mid, &from, vec![rcpt], None, r.chance(20)),
                id: mid,
                legit,
                trusted,
                cut: r.chance(20),
            });
        }
        actors.push(Actor {
            role: Role::Lan,
            ip,
            start: r.millis(0, 20_000),
            tasks,
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
        actors.push(Actor {
            role: Role::RemoteUser,
            ip,
            start: r.millis(0, 20_000),
            tasks: vec![Task::Send {
                job: job(&mid, &from, vec![rcpt], Some((user, pw)), false),
                id: mid,
                legit: right,
                trusted,
                cut: false,
            }],
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
            }],
        });
    }
    // Spammers replaying the corpus.
    let corpus = attacks();
    if !corpus.is_empty() {
        let ip = next_outside(&mut r);
        let mut tasks = Vec::new();
        for _ in 0..8 + r.below(16) {
            let (_, chunks) = r.pick(corpus);
            tasks.push(Task::Raw {
                chunks: chunks.clone(),
                id: None,
            });
        }
        actors.push(Actor {
            role: Role::CorpusSpammer,
            ip,
            start: r.millis(0, 20_000),
            tasks,
        });
    }
    // Spammers with generated attacks.
    for _ in 0..1 + r.below(2) {
        let ip = next_outside(&mut r);
        let mut tasks = Vec::new();
        for _ in 0..4 + r.below(10) {
            tasks.push(generated_attack(&mut r, &config, &local, &id()));
        }
        actors.push(Actor {
            role: Role::Spammer,
            ip,
            start: r.millis(0, 25_000),
            tasks,
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
        });
    }
    if r.chance(50) {
        actors.push(Actor {
            role: Role::Slow,
            ip: next_outside(&mut r),
            start: r.millis(0, 10_000),
            tasks: vec![Task::Slow],
        });
    }

    // Faults.
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
        let ip = r.pick(&actors).ip;
        let at = r.millis(0, 25_000);
        faults.push((at, Fault::Partition(ip)));
        faults.push((at + r.millis(500, 5_000), Fault::Repair(ip)));
    }
    for _ in 0..1 + r.below(3) {
        faults.push((
            r.millis(1_000, 25_000),
            Fault::Crash {
                within: r.millis(500, 8_000),
                down: r.millis(100, 3_000),
                queued: r.chance(50),
            },
        ));
    }
    faults.sort_by_key(|f| f.0);
    Swarm {
        config,
        lan_hosts,
        exchangers,
        actors,
        faults,
    }
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
        timeout: Duration::from_secs(10),
    }
}

fn generated_attack(r: &mut Rng, config: &Config, local: &[String], id: &str) -> Task {
    let h = config.hostname.clone();
    let ip = format!("[{RELAY}]");
    let f = r.pick(&FOREIGN[..3]).to_string();
    let l = r.pick(local).clone();
    let u = *r.pick(&["relaytest", "bob", "Victim"]);
    let forms = [
        format!("{u}%{f}@{h}"),
        format!("{u}%{f}@{ip}"),
        format!("{u}%{f}@{l}"),
        format!("\"{u}@{f}\"@{l}"),
        format!("\"{u}@{f}\""),
        format!("\"{u}%{f}\""),
        format!("{f}!{u}@{h}"),
        format!("{f}!{u}@{ip}"),
        format!("{f}!{u}"),
        format!("{u}@{f}@{l}"),
        format!("@{h}:{u}@{f}"),
        format!("@{ip}:{u}@{f}"),
        format!("{u}@{f}."),
        format!("{u}@{f}@"),
        format!("{u}@{}", f.to_ascii_uppercase()),
        format!("{u}@{f}"),
        format!("{u}%{}@{}", f.to_ascii_uppercase(), l.to_ascii_uppercase()),
        format!("{u}@[192.0.2.99]"),
        format!("{u}@xn--bcher-kva.example"),
        format!("{u}@{BACKUP}"),
        format!("{u}%{f}@{BACKUP}"),
    ];
    let senders = [
        String::new(),
        format!("spammer@{f}"),
        format!("alice@{l}"),
        format!("antispam@{ip}"),
        "x@spam.example".to_string(),
    ];
    let from = r.pick(&senders).clone();
    let mut chunks: Vec<Vec<u8>> = vec![b"EHLO spam.example\r\n".to_vec()];
    if r.chance(20) {
        // A wrong password, then relaying anyway.
        chunks.push(b"AUTH PLAIN AGNhcm9sAHdyb25n\r\n".to_vec());
    }
    chunks.push(format!("MAIL FROM:<{from}>\r\n").into_bytes());
    for _ in 0..1 + r.below(3) {
        chunks.push(format!("RCPT TO:<{}>\r\n", r.pick(&forms)).into_bytes());
    }
    if r.chance(30) {
        chunks.push(format!("RCPT TO:<{}@{l}>\r\n", r.pick(&USERS)).into_bytes());
    }
    chunks.push(b"DATA\r\n".to_vec());
    let mut body = format!("X-Sim-Id: {id}\r\nSubject: buy\r\n\r\nspam\r\n").into_bytes();
    if r.chance(40) {
        let seqs: [&[u8]; 6] = [
            b"\n.\n",
            b"\r.\r",
            b"\n.\r\n",
            b"\r\n.\n",
            b"\r\n\x00.\r\n",
            b"\r\n.\r\r\n",
        ];
        let seq = *r.pick(&seqs);
        body.extend_from_slice(seq);
        body.extend_from_slice(
            format!(
                "MAIL FROM:<ceo@{l}>\r\nRCPT TO:<{}@{l}>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n",
                r.pick(&USERS)
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(b".\r\nQUIT\r\n");
    chunks.push(body);
    Task::Raw {
        chunks,
        id: Some(id.to_string()),
    }
}

/// The corpus attacks as chunks to send, loaded once.
fn attacks() -> &'static [(String, Vec<Vec<u8>>)] {
    static ATTACKS: OnceLock<Vec<(String, Vec<Vec<u8>>)>> = OnceLock::new();
    ATTACKS.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus/attacks");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "smtp"))
            .filter_map(|p| {
                let t = transcript::parse(&std::fs::read_to_string(&p).ok()?).ok()?;
                if t.auth.is_some() {
                    return None;
                }
                let chunks = t
                    .steps
                    .into_iter()
                    .filter_map(|s| match s {
                        Step::Send { bytes, .. } => Some(bytes),
                        Step::Reply { .. } => None,
                    })
                    .collect();
                Some((p.file_stem()?.to_string_lossy().into_owned(), chunks))
            })
            .collect()
    })
}

// ---------------------------------------------------------------- the world

#[derive(Clone, Debug, Default)]
struct Submission {
    trusted: bool,
    legit: bool,
    acked: bool,
    refused: Option<String>,
    /// Recipients answered 2xx in the accepted attempt.
    accepted: Vec<String>,
}

#[derive(Clone, Debug)]
struct Arrival {
    rcpts: Vec<String>,
    id: Option<String>,
    bounce_of: Option<String>,
    body_hash: u64,
}

struct Watch {
    oracle: Oracle,
    recorder: Recorder,
    peer: IpAddr,
}

#[derive(Default)]
struct SpoolState {
    next: u64,
    entries: BTreeMap<String, Entry>,
    writing: usize,
}

/// Everything the hosts share (turmoil runs them on one thread).
struct World {
    /// The simulation's time, for events outside the hosts.
    now: Duration,
    config: Config,
    spool: SpoolState,
    submissions: BTreeMap<String, Submission>,
    arrivals: Vec<Arrival>,
    corpus_ips: BTreeSet<IpAddr>,
    corpus_bodies: BTreeSet<u64>,
    failing: BTreeSet<IpAddr>,
    watches: BTreeMap<u64, Watch>,
    next_conn: u64,
    violations: Vec<String>,
    offending: Option<Transcript>,
    hash: u64,
    trace: Option<Vec<String>>,
    stats: Stats,
}

/// Figures of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub sessions: u64,
    pub messages: u64,
    pub relay_refused: u64,
    pub deliveries: u64,
}

type Shared = Rc<RefCell<World>>;

fn elapsed() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

impl World {
    fn event(&mut self, what: &str) {
        let at = turmoil::sim_elapsed().unwrap_or(self.now);
        let line = format!("{:>9.3} {what}", at.as_secs_f64());
        self.hash = fnv(self.hash, line.as_bytes());
        if let Some(t) = &mut self.trace {
            t.push(line);
        }
    }

    fn violation(&mut self, what: String) {
        self.event(&format!("VIOLATION {what}"));
        self.violations.push(what);
    }

    fn finish_watch(&mut self, conn: u64) {
        let Some(w) = self.watches.remove(&conn) else {
            return;
        };
        let verdict = w.oracle.finish();
        self.stats.relay_refused += verdict.stats.relay_refused as u64;
        if !verdict.violations.is_empty() {
            for v in &verdict.violations {
                self.violation(format!("wire oracle, session {conn} from {}: {v}", w.peer));
            }
            if self.offending.is_none() {
                let mut t = w.recorder.finish();
                t.expect = Some(transcript::Expect::Closed);
                self.offending = Some(t);
            }
        }
    }

    fn arrive(&mut self, at: String, rcpts: Vec<String>, from_null: bool, body: &[u8]) {
        let text = String::from_utf8_lossy(body);
        let header = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        let id = header("X-Sim-Id:");
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
        self.event(&format!(
            "arrival at {at} for {rcpts:?} id {id:?} bounce {is_bounce}"
        ));
        // End to end: who submitted it, and was that client trusted?
        match (&arrival.id, &arrival.bounce_of) {
            (Some(id), _) => match self.submissions.get(id) {
                None => self.violation(format!("message {id} arrived at {at} but no client submitted it")),
                Some(s) => {
                    let foreign: Vec<&String> = rcpts
                        .iter()
                        .filter(|r| oracle::is_foreign(&self.config, r))
                        .collect();
                    if !s.trusted && at.starts_with("exchanger") && !foreign.is_empty() {
                        self.violation(format!(
                            "open relay end to end: message {id} from an untrusted client reached {at} for {foreign:?}"
                        ));
                    }
                }
            },
            (None, Some(orig)) if !orig.is_empty() && !self.submissions.contains_key(orig) => {
                self.violation(format!("bounce at {at} of {orig}, which no client submitted"))
            }
            (None, Some(_)) => {}
            (None, None) => {
                if !self.corpus_bodies.contains(&arrival.body_hash) {
                    self.violation(format!(
                        "a message no client submitted (smuggled?) arrived at {at} for {rcpts:?}"
                    ));
                }
            }
        }
        self.arrivals.push(arrival);
    }
}

#[derive(Clone)]
struct SimTap(Shared);

impl Tap for SimTap {
    fn connected(&self, peer: IpAddr) -> u64 {
        let mut w = self.0.borrow_mut();
        w.next_conn += 1;
        let conn = w.next_conn;
        w.stats.sessions += 1;
        let watch = Watch {
            oracle: Oracle::new(&w.config, peer),
            recorder: Recorder::new(peer, Some(PathBuf::from("../configs/sim.toml"))),
            peer,
        };
        w.watches.insert(conn, watch);
        w.event(&format!("connect {conn} from {peer}"));
        conn
    }
    fn client_bytes(&self, conn: u64, bytes: &[u8]) {
        let mut w = self.0.borrow_mut();
        w.hash = fnv(w.hash, bytes);
        if let Some(x) = w.watches.get_mut(&conn) {
            x.oracle.client_bytes(bytes);
            x.recorder.client(bytes);
        }
    }
    fn server_bytes(&self, conn: u64, bytes: &[u8]) {
        let mut w = self.0.borrow_mut();
        let codes: Vec<String> = bytes
            .split(|&b| b == b'\n')
            .filter(|l| l.len() >= 4 && l[3] != b'-')
            .map(|l| String::from_utf8_lossy(&l[..3]).into_owned())
            .collect();
        w.event(&format!("reply {conn} {}", codes.join(",")));
        if let Some(x) = w.watches.get_mut(&conn) {
            x.oracle.server_bytes(bytes);
            x.recorder.server(bytes);
        }
    }
    fn handed_on(&self, conn: u64, message: &Message) {
        let mut w = self.0.borrow_mut();
        w.stats.messages += 1;
        let corpus = w
            .watches
            .get(&conn)
            .is_some_and(|x| w.corpus_ips.contains(&x.peer));
        if corpus {
            let h = fnv(FNV0, &message.body);
            w.corpus_bodies.insert(h);
        }
        if let Some(x) = w.watches.get_mut(&conn) {
            x.oracle.handed_on(message);
        }
    }
    fn closed(&self, conn: u64) {
        let mut w = self.0.borrow_mut();
        w.event(&format!("close {conn}"));
        w.finish_watch(conn);
    }
    fn event(&self, what: &str) {
        self.0.borrow_mut().event(what);
    }
}

struct TurmoilNet;

impl Net for TurmoilNet {
    type Stream = turmoil::net::TcpStream;
    type Listener = turmoil::net::TcpListener;
    async fn listen(&self, addr: SocketAddr) -> io::Result<Self::Listener> {
        turmoil::net::TcpListener::bind(addr).await
    }
    async fn accept(&self, l: &Self::Listener) -> io::Result<(Self::Stream, IpAddr)> {
        l.accept().await.map(|(s, a)| (s, a.ip()))
    }
    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Stream> {
        turmoil::net::TcpStream::connect(addr).await
    }
}

/// The relay's spool: a write is durable only when its future completes.
struct SimSpool {
    world: Shared,
    write: Duration,
}

struct Writing<'a>(&'a Shared);
impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.borrow_mut().spool.writing -= 1;
    }
}

impl Spool for SimSpool {
    async fn store(&self, entry: &Entry) -> Result<String, StoreError> {
        self.world.borrow_mut().spool.writing += 1;
        let _w = Writing(&self.world);
        tokio::time::sleep(self.write).await;
        let mut w = self.world.borrow_mut();
        w.spool.next += 1;
        let id = format!("Q{:06}", w.spool.next);
        w.spool.entries.insert(id.clone(), entry.clone());
        Ok(id)
    }
    async fn update(&self, id: &str, entry: &Entry) {
        tokio::time::sleep(self.write).await;
        if let Some(e) = self.world.borrow_mut().spool.entries.get_mut(id) {
            *e = entry.clone();
        }
    }
    async fn remove(&self, id: &str) {
        self.world.borrow_mut().spool.entries.remove(id);
    }
    async fn list(&self) -> Vec<(String, Entry)> {
        let w = self.world.borrow();
        w.spool
            .entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

struct SimResolver(BTreeMap<String, IpAddr>);

impl Resolver for SimResolver {
    async fn resolve(&self, domain: &Domain) -> Vec<SocketAddr> {
        let ip = match domain {
            Domain::Name(n) => Some(*self.0.get(n).unwrap_or(&self.0[FOREIGN[0]])),
            Domain::Literal(ip) => self.0.values().find(|x| *x == ip).copied(),
        };
        ip.map(|ip| SocketAddr::new(ip, PORT)).into_iter().collect()
    }
}

struct SimMailboxes(Shared);

impl Mailboxes for SimMailboxes {
    async fn deliver(&self, mailbox: &str, _id: &str, m: &Message) -> Result<(), DeliverError> {
        self.0.borrow_mut().arrive(
            format!("mailbox {mailbox}"),
            vec![mailbox.to_string()],
            m.from.is_null(),
            &m.body,
        );
        Ok(())
    }
}

/// A foreign mail exchanger: the core session with a policy of its own,
/// recording every message; answering 421 while it is failing.
async fn exchanger(world: Shared, domain: String, me: IpAddr) -> turmoil::Result {
    let mut config = Config {
        hostname: format!("mx.{domain}"),
        ..Config::default()
    };
    config.domains.local = vec![domain.clone()];
    config.lan.networks = vec![RELAY.to_string()];
    if domain == "defunct.example" {
        config.domains.mailboxes = Some(vec!["someone@defunct.example".into()]);
    }
    let policy = Arc::new(Policy::new(config).map_err(|e| e.to_string())?);
    let listener = turmoil::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, PORT)).await?;
    loop {
        let (mut stream, peer) = listener.accept().await?;
        let world = world.clone();
        let policy = policy.clone();
        let domain = domain.clone();
        tokio::task::spawn_local(async move {
            if world.borrow().failing.contains(&me) {
                let _ = stream.write_all(b"421 4.3.2 try again later\r\n").await;
                return;
            }
            let clock = Clock::start();
            let s = Session::new(policy, Peer { ip: peer.ip() }, clock.now());
            relayguard_node::drive_server(stream, s, &clock, &mut Arrivals { world, domain }).await;
        });
    }

    /// Every message the exchanger accepts arrives, and is acked at once.
    struct Arrivals {
        world: Shared,
        domain: String,
    }
    impl relayguard_node::ServerHooks for Arrivals {
        async fn store(&mut self, m: Message) -> Result<String, StoreError> {
            let rcpts = m
                .recipients
                .iter()
                .map(|r| r.path.mailbox.as_ref().map_or(String::new(), |m| m.to_string()))
                .collect();
            self.world.borrow_mut().arrive(
                format!("exchanger {}", self.domain),
                rcpts,
                m.from.is_null(),
                &m.body,
            );
            Ok("x".into())
        }
    }
}

async fn connect(ip: IpAddr) -> Option<turmoil::net::TcpStream> {
    let addr = SocketAddr::new(ip, PORT);
    match tokio::time::timeout(Duration::from_secs(5), turmoil::net::TcpStream::connect(addr)).await {
        Ok(Ok(s)) => Some(s),
        _ => None,
    }
}

/// A stream that fails a large write half way: the connection drops in the
/// middle of DATA.
struct Cut<S> {
    inner: S,
    cut: bool,
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Cut<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Cut<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        if self.cut && buf.len() > 300 {
            return std::task::Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "cut mid-DATA")));
        }
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Reads until a final reply line arrives, the server closes, or `wait`.
async fn await_reply(stream: &mut turmoil::net::TcpStream, wait: Duration) -> bool {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return false,
            Err(_) => return true,
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                if got.split(|&b| b == b'\n').any(|l| l.len() >= 4 && l[3] == b' ') {
                    return true;
                }
            }
        }
    }
}

async fn actor(world: Shared, actor: Actor, seed: u64) -> turmoil::Result {
    let mut r = Rng::new(seed);
    tokio::time::sleep(actor.start).await;
    for task in actor.tasks {
        match task {
            Task::Send {
                id,
                job,
                legit,
                trusted,
                cut,
            } => {
                world.borrow_mut().submissions.insert(
                    id.clone(),
                    Submission {
                        trusted,
                        legit,
                        ..Submission::default()
                    },
                );
                let mut first = true;
                let mut wait = Duration::from_secs(1);
                loop {
                    if elapsed() > GIVE_UP_AT {
                        break;
                    }
                    if let Some(stream) = connect(RELAY.into()).await {
                        let stream = Cut {
                            inner: stream,
                            cut: cut && first,
                        };
                        let clock = Clock::start();
                        let c = Client::new(job.clone(), clock.now());
                        let outcome = relayguard_node::run_client(stream, c, &clock).await;
                        first = false;
                        let mut w = world.borrow_mut();
                        match &outcome.message {
                            MessageResult::Accepted(_) => {
                                let s = w.submissions.get_mut(&id).expect("registered");
                                s.acked = true;
                                s.accepted = outcome
                                    .recipients
                                    .iter()
                                    .filter(|(_, r)| matches!(r, RcptResult::Accepted(_)))
                                    .map(|(a, _)| a.to_ascii_lowercase())
                                    .collect();
                                w.event(&format!("{} submitted {id}", actor.ip));
                                break;
                            }
                            MessageResult::Permanent(reply) => {
                                w.submissions.get_mut(&id).expect("registered").refused =
                                    Some(reply.to_string());
                                break;
                            }
                            MessageResult::NotSent(f) => {
                                let permanent = outcome
                                    .recipients
                                    .iter()
                                    .all(|(_, r)| matches!(r, RcptResult::Permanent(_)))
                                    || matches!(f, relayguard_core::client::Failure::AuthRefused(x) | relayguard_core::client::Failure::MailRefused(x) if x.is_permanent());
                                if permanent {
                                    w.submissions.get_mut(&id).expect("registered").refused =
                                        Some(format!("{f:?}"));
                                    break;
                                }
                            }
                            MessageResult::Transient(_) => {}
                        }
                    }
                    tokio::time::sleep(wait + r.millis(0, 500)).await;
                    wait = (wait * 2).min(Duration::from_secs(8));
                }
            }
            Task::Raw { chunks, id } => {
                if let Some(id) = id {
                    world.borrow_mut().submissions.insert(id, Submission::default());
                }
                let Some(mut stream) = connect(RELAY.into()).await else {
                    continue;
                };
                if !await_reply(&mut stream, Duration::from_secs(3)).await {
                    continue;
                }
                for c in chunks {
                    if stream.write_all(&c).await.is_err()
                        || !await_reply(&mut stream, Duration::from_secs(2)).await
                    {
                        break;
                    }
                }
            }
            Task::Flood { connections, hold } => {
                let mut held = Vec::new();
                for _ in 0..connections {
                    if let Some(s) = connect(RELAY.into()).await {
                        held.push(s);
                    }
                }
                tokio::time::sleep(hold).await;
                drop(held);
            }
            Task::Slow => {
                if let Some(mut s) = connect(RELAY.into()).await {
                    for &b in b"EHLO slow.example\r\n" {
                        if s.write_all(&[b]).await.is_err() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    // Then say nothing until the server gives up.
                    let mut buf = [0u8; 512];
                    while let Ok(Ok(n)) =
                        tokio::time::timeout(Duration::from_secs(90), s.read(&mut buf)).await
                    {
                        if n == 0 {
                            break;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- a run

/// The result of one seed.
#[derive(Clone, Debug)]
pub struct Report {
    pub seed: u64,
    pub stats: Stats,
    pub violations: Vec<String>,
    pub hash: u64,
    /// The seed's configuration, actors and faults, one per line.
    pub describe: Vec<String>,
    pub trace: Vec<String>,
    /// The first session the wire oracle faulted, as a transcript.
    pub offending: Option<Transcript>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

fn describe(s: &Swarm) -> Vec<String> {
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
    ];
    for a in &s.actors {
        out.push(format!(
            "actor {:?} {} at {:?}: {} tasks",
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

/// Runs one seed to the end and judges it.
pub fn run(seed: u64, bugs: Bugs, verbose: bool) -> Report {
    let swarm = swarm(seed, bugs);
    let describe = describe(&swarm);
    let world: Shared = Rc::new(RefCell::new(World {
        now: Duration::ZERO,
        config: swarm.config.clone(),
        spool: SpoolState::default(),
        submissions: BTreeMap::new(),
        arrivals: Vec::new(),
        corpus_ips: swarm
            .actors
            .iter()
            .filter(|a| matches!(a.role, Role::CorpusSpammer))
            .map(|a| a.ip)
            .collect(),
        corpus_bodies: BTreeSet::new(),
        failing: BTreeSet::new(),
        watches: BTreeMap::new(),
        next_conn: 0,
        violations: Vec::new(),
        offending: None,
        hash: FNV0,
        trace: verbose.then(Vec::new),
        stats: Stats::default(),
    }));
    let mut sim = turmoil::Builder::new()
        .epoch(SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000))
        .rng_seed(seed)
        .simulation_duration(END_AT + Duration::from_secs(30))
        .tick_duration(TICK)
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(15))
        .build();
    let policy = Arc::new(Policy::new(swarm.config.clone()).expect("swarm configs are valid"));
    {
        let world = world.clone();
        let exchangers = swarm.exchangers.clone();
        sim.host(IpAddr::V4(RELAY), move || {
            let world = world.clone();
            let policy = policy.clone();
            let exchangers = exchangers.clone();
            async move {
                let mut nc = NodeConfig::new(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), PORT));
                nc.max_connections = 40;
                nc.max_per_ip = 8;
                nc.connect_timeout = Duration::from_secs(5);
                nc.reply_timeout = Duration::from_secs(10);
                nc.retry_base = Duration::from_secs(1);
                nc.retry_max = Duration::from_secs(8);
                nc.max_queue_age = Duration::from_secs(3600);
                world.borrow_mut().event("relay starts");
                let node = Node::new(
                    policy,
                    nc,
                    TurmoilNet,
                    SimSpool {
                        world: world.clone(),
                        write: Duration::from_millis(40),
                    },
                    SimResolver(exchangers),
                    SimMailboxes(world.clone()),
                    SimTap(world.clone()),
                );
                node.run().await?;
                Ok(())
            }
        });
    }
    for (domain, &ip) in &swarm.exchangers {
        let world = world.clone();
        let domain = domain.clone();
        sim.host(ip, move || exchanger(world.clone(), domain.clone(), ip));
    }
    for (i, a) in swarm.actors.iter().enumerate() {
        sim.client(
            a.ip,
            actor(
                world.clone(),
                a.clone(),
                seed.wrapping_mul(31).wrapping_add(i as u64),
            ),
        );
    }

    // The active phase, faults on schedule.
    let relay = IpAddr::V4(RELAY);
    let mut faults = swarm.faults.clone().into_iter().peekable();
    let mut crash_by: Option<(Duration, bool)> = None;
    let mut down_for = Duration::ZERO;
    let mut restart_at: Option<Duration> = None;
    let mut partitioned: BTreeSet<IpAddr> = BTreeSet::new();
    let mut held: BTreeSet<IpAddr> = BTreeSet::new();
    let mut healed = false;
    loop {
        let now = sim.elapsed();
        world.borrow_mut().now = now;
        while faults.peek().is_some_and(|(at, _)| *at <= now) && !healed {
            let (_, f) = faults.next().expect("peeked");
            world.borrow_mut().event(&format!("fault {f:?}"));
            match f {
                Fault::Partition(ip) => {
                    sim.partition(relay, ip);
                    partitioned.insert(ip);
                }
                Fault::Repair(ip) => {
                    sim.repair(relay, ip);
                    partitioned.remove(&ip);
                }
                Fault::Hold(ip) => {
                    sim.hold(relay, ip);
                    held.insert(ip);
                }
                Fault::Release(ip) => {
                    sim.release(relay, ip);
                    held.remove(&ip);
                }
                Fault::Latency(ip, d) => sim.set_link_latency(relay, ip, d),
                Fault::Crash { within, down, queued } => {
                    if crash_by.is_none() && restart_at.is_none() {
                        crash_by = Some((now + within, queued));
                        down_for = down;
                    }
                }
                Fault::ExchangerFails(ip, on) => {
                    if on {
                        world.borrow_mut().failing.insert(ip);
                    } else {
                        world.borrow_mut().failing.remove(&ip);
                    }
                }
            }
        }
        // Crash while a spool write is under way: mid-transaction.
        if let Some((by, queued)) = crash_by {
            let w = world.borrow();
            let ready = if queued {
                w.spool.entries.values().any(|e| e.attempts > 0)
            } else {
                w.spool.writing > 0
            };
            drop(w);
            if ready || now >= by {
                world.borrow_mut().event("fault crash relay");
                sim.crash(relay);
                crash_by = None;
                restart_at = Some(now + down_for);
            }
        }
        if restart_at.is_some_and(|t| now >= t) {
            world.borrow_mut().event("fault restart relay");
            sim.bounce(relay);
            restart_at = None;
        }
        if !healed && now >= HEAL_AT {
            healed = true;
            world.borrow_mut().event("heal");
            for ip in std::mem::take(&mut partitioned) {
                sim.repair(relay, ip);
            }
            for ip in std::mem::take(&mut held) {
                sim.release(relay, ip);
            }
            for ip in swarm.exchangers.values() {
                sim.set_link_latency(relay, *ip, Duration::from_millis(5));
            }
            world.borrow_mut().failing.clear();
            crash_by = None;
            if restart_at.take().is_some() {
                sim.bounce(relay);
            }
        }
        let done = match sim.step() {
            Ok(done) => done,
            Err(e) => {
                world.borrow_mut().violation(format!("simulation error: {e}"));
                break;
            }
        };
        let w = world.borrow();
        let quiet = w.spool.entries.is_empty() && w.spool.writing == 0;
        drop(w);
        if healed && ((done && quiet) || sim.elapsed() >= END_AT) {
            break;
        }
    }
    world.borrow_mut().now = sim.elapsed();
    world.borrow_mut().event("end");
    drop(sim);
    judge_end(&world);
    let mut w = world.borrow_mut();
    Report {
        seed,
        stats: w.stats,
        violations: std::mem::take(&mut w.violations),
        hash: w.hash,
        describe,
        trace: w.trace.take().unwrap_or_default(),
        offending: w.offending.take(),
    }
}

/// After the heal: nothing acked is lost, legitimate mail got through.
fn judge_end(world: &Shared) {
    let mut w = world.borrow_mut();
    let conns: Vec<u64> = w.watches.keys().copied().collect();
    for c in conns {
        w.finish_watch(c);
    }
    let mut found = Vec::new();
    // The local domains share one mailbox namespace: alice@ any of them is
    // the same mailbox.
    let local = &w.config.domains.local;
    let mailbox = |addr: &str| match addr.rsplit_once('@') {
        Some((l, d)) if local.iter().any(|x| x.eq_ignore_ascii_case(d)) => format!("{l}@"),
        _ => addr.to_string(),
    };
    for (id, s) in &w.submissions {
        let arrived = |rcpt: Option<&str>| {
            w.arrivals.iter().any(|a| {
                a.bounce_of.as_deref() == Some(id.as_str())
                    || (a.id.as_deref() == Some(id.as_str())
                        && rcpt.is_none_or(|r| a.rcpts.iter().any(|x| mailbox(x) == mailbox(r))))
            })
        };
        if s.legit {
            if let Some(why) = &s.refused {
                found.push(format!("liveness: legitimate message {id} refused: {why}"));
            } else if !s.acked {
                found.push(format!("liveness: legitimate message {id} never accepted"));
            }
        }
        if s.acked {
            if s.legit {
                for r in &s.accepted {
                    if !arrived(Some(r)) {
                        found.push(format!(
                            "loss: message {id} was acked with 250 but never reached {r} nor bounced"
                        ));
                    }
                }
            } else if !arrived(None) {
                found.push(format!(
                    "loss: message {id} was acked with 250 but never delivered nor bounced"
                ));
            }
        }
    }
    if !w.spool.entries.is_empty() {
        found.push(format!(
            "{} messages still queued at the end",
            w.spool.entries.len()
        ));
    }
    for f in found {
        w.violation(f);
    }
}

/// Runs seeds on `jobs` threads; `done` is called on the calling thread as
/// each report comes in (in completion order; reports are returned sorted).
pub fn campaign(seeds: &[u64], bugs: Bugs, jobs: usize, mut done: impl FnMut(&Report)) -> Vec<Report> {
    let (tx, rx) = std::sync::mpsc::channel();
    let jobs = jobs.max(1).min(seeds.len().max(1));
    let seeds = Arc::new(seeds.to_vec());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..jobs {
        let (tx, seeds, next) = (tx.clone(), seeds.clone(), next.clone());
        handles.push(std::thread::spawn(move || {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&seed) = seeds.get(i) else { break };
                if tx.send(run(seed, bugs, false)).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let mut out = Vec::new();
    for r in rx {
        done(&r);
        out.push(r);
    }
    for h in handles {
        let _ = h.join();
    }
    out.sort_by_key(|r| r.seed);
    out
}

/// The configuration as TOML, so that a regression transcript can name it.
pub fn config_toml(c: &Config) -> String {
    let list = |v: &[String]| {
        let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
        format!("[{}]", items.join(", "))
    };
    let own: Vec<String> = c.own_addresses.iter().map(|a| a.to_string()).collect();
    let mut t = format!(
        "hostname = {:?}\nown_addresses = {}\n\n[domains]\nlocal = {}\n",
        c.hostname,
        list(&own),
        list(&c.domains.local)
    );
    if let Some(m) = &c.domains.mailboxes {
        t.push_str(&format!("mailboxes = {}\n", list(m)));
    }
    t.push_str(&format!(
        "relay_to = {}\n\n[lan]\nnetworks = {}\n\n",
        list(&c.domains.relay_to),
        list(&c.lan.networks)
    ));
    t.push_str(&format!(
        "[relay]\nrequire_auth = {}\nnon_local_senders_in_lan = {}\npercent_hack = {}\n\n[auth]\nusers = [\n",
        c.relay.require_auth, c.relay.non_local_senders_in_lan, c.relay.percent_hack
    ));
    for u in &c.auth.users {
        t.push_str(&format!(
            "  {{ name = {:?}, password = {:?}, relay = {} }},\n",
            u.name, u.password, u.relay
        ));
    }
    t.push_str(&format!(
        "]\n\n[lists]\nblack = {}\n\n[limits]\ncommand_timeout_secs = {}\ndata_timeout_secs = {}\n",
        list(&c.lists.black),
        c.limits.command_timeout_secs,
        c.limits.data_timeout_secs
    ));
    t
}
