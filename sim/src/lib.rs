//! relayguard-sim: the relay node in a turmoil world of LAN hosts, remote
//! users, outside senders, spammers and foreign mail exchangers, with faults,
//! judged by oracles. One seed decides everything: the configuration, the
//! actors, the faults and every draw they make (VOPR / FoundationDB style).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use relayguard_core::buggify::Bugs;
use relayguard_core::config::Config;
use relayguard_core::policy::Policy;
use relayguard_core::transcript::Transcript;
use relayguard_node::{Node, NodeConfig};

mod actors;
mod backends;
mod checkers;
mod exchanger;
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

use actors::actor;
use backends::{SimMailboxes, SimResolver, SimSpool, SimTap, TurmoilNet};
use exchanger::exchanger;
use world::{Shared, World};

use options::*;

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
