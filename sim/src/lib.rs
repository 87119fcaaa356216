//! relayguard-sim: the relay node in a turmoil world of LAN hosts, remote
//! users, outside senders, spammers and foreign mail exchangers, with faults,
//! judged by oracles. One seed decides everything: the configuration, the
//! actors, the faults and every draw they make (VOPR / FoundationDB style).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use relayguard_core::address::Domain;
use relayguard_core::buggify::Bugs;
use relayguard_core::client::{Client, MessageResult, RcptResult};
use relayguard_core::config::Config;
use relayguard_core::policy::Policy;
use relayguard_core::session::{Message, Output, Peer, Session};
use relayguard_core::transcript::Transcript;
use relayguard_node::{Clock, Entry, Mailboxes, Net, Node, NodeConfig, Resolver, Spool, Tap};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod checkers;
mod faults;
mod options;
mod rng;
mod swarm;
mod world;

pub use faults::Fault;
pub use options::RELAY;
pub use rng::Rng;
pub use swarm::{Actor, Role, Swarm, Task, swarm};
pub use world::Stats;

use world::{Shared, Submission, World, elapsed};

use options::*;
use rng::{FNV0, fnv};

#[derive(Clone)]
struct SimTap(Shared);

impl Tap for SimTap {
    fn connected(&self, peer: IpAddr) -> u64 {
        let mut w = self.0.borrow_mut();
        w.next_conn += 1;
        let conn = w.next_conn;
        w.stats.sessions += 1;
        let watch = checkers::wire::Watch::new(&w.config, peer);
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
        checkers::wire::finish(&mut w, conn);
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
    async fn store(&self, entry: &Entry) -> Result<String, String> {
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
    async fn deliver(&self, mailbox: &str, _id: &str, m: &Message) -> Result<(), String> {
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
            let mut s = Session::new(policy, Peer { ip: peer.ip() }, clock.now());
            let mut buf = vec![0u8; 8192];
            loop {
                while let Some(o) = s.poll_output() {
                    match o {
                        Output::Send(b) => {
                            if stream.write_all(&b).await.is_err() {
                                return;
                            }
                        }
                        Output::Message(m) => {
                            let rcpts = m
                                .recipients
                                .iter()
                                .map(|r| r.path.mailbox.as_ref().map_or(String::new(), |m| m.to_string()))
                                .collect();
                            world.borrow_mut().arrive(
                                format!("exchanger {domain}"),
                                rcpts,
                                m.from.is_null(),
                                &m.body,
                            );
                            s.message_stored(clock.now(), Ok("x".into()));
                        }
                        Output::Close => return,
                    }
                }
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => s.handle_input(clock.now(), &buf[..n]),
                }
            }
        });
    }
}

async fn connect(ip: IpAddr) -> Option<turmoil::net::TcpStream> {
    let addr = SocketAddr::new(ip, PORT);
    match tokio::time::timeout(CONNECT_TIMEOUT, turmoil::net::TcpStream::connect(addr)).await {
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
        if self.cut && buf.len() > CUT_OVER {
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
                let mut wait = SENDER_RETRY_FIRST;
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
                    tokio::time::sleep(wait + r.millis(0, SENDER_RETRY_JITTER_MS)).await;
                    wait = (wait * 2).min(SENDER_RETRY_MAX);
                }
            }
            Task::Raw { chunks, id } => {
                if let Some(id) = id {
                    world.borrow_mut().submissions.insert(id, Submission::default());
                }
                let Some(mut stream) = connect(RELAY.into()).await else {
                    continue;
                };
                if !await_reply(&mut stream, GREETING_WAIT).await {
                    continue;
                }
                for c in chunks {
                    if stream.write_all(&c).await.is_err()
                        || !await_reply(&mut stream, CHUNK_REPLY_WAIT).await
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
                        tokio::time::sleep(SLOW_BYTE).await;
                    }
                    // Then say nothing until the server gives up.
                    let mut buf = [0u8; 512];
                    while let Ok(Ok(n)) = tokio::time::timeout(SLOW_SILENCE, s.read(&mut buf)).await {
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
    let corpus_ips = swarm
        .actors
        .iter()
        .filter(|a| matches!(a.role, Role::CorpusSpammer))
        .map(|a| a.ip)
        .collect();
    let world: Shared = Rc::new(RefCell::new(World::new(
        swarm.config.clone(),
        corpus_ips,
        verbose,
    )));
    let mut sim = turmoil::Builder::new()
        .epoch(SystemTime::UNIX_EPOCH + EPOCH)
        .rng_seed(seed)
        .simulation_duration(SIM_LIMIT)
        .tick_duration(TICK)
        .min_message_latency(MIN_LATENCY)
        .max_message_latency(MAX_LATENCY)
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
                nc.max_connections = MAX_CONNECTIONS;
                nc.max_per_ip = MAX_PER_IP;
                nc.connect_timeout = RELAY_CONNECT_TIMEOUT;
                nc.reply_timeout = RELAY_REPLY_TIMEOUT;
                nc.retry_base = RETRY_BASE;
                nc.retry_max = RETRY_MAX;
                nc.max_queue_age = MAX_QUEUE_AGE;
                world.borrow_mut().event("relay starts");
                let node = Node::new(
                    policy,
                    nc,
                    TurmoilNet,
                    SimSpool {
                        world: world.clone(),
                        write: SPOOL_WRITE,
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
                sim.set_link_latency(relay, *ip, HEALED_LATENCY);
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
    checkers::judge_end(&world);
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
