//! One seed, from its swarm to its report.
//!
//! The relay runs as a turmoil host (so that it can crash and restart with
//! its spool intact in the world), the exchangers as hosts, the actors as
//! clients. The loop steps the simulation, lets the fault scheduler act
//! between steps, and ends once the world has healed and gone quiet. Hosts
//! are created when first needed (an actor at its start, an exchanger at
//! the relay's first connection, the twin at its fault) and the exchangers
//! sleep while idle: turmoil's step costs per host it has and per host it
//! runs, and that is most of what a seed costs.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use relayguard_core::Policy;
use relayguard_core::check::buggify::{Bug, Bugs};
use relayguard_node::{Node, NodeConfig};

use crate::actors::actor;
use crate::backends::{SimResolver, SimTap, TurmoilNet};
use crate::checkers::{self, Kind};
use crate::disk::{SimMailboxes, SimSpool};
use crate::exchanger::exchanger;
use crate::faults::Scheduler;
use crate::naps::{self, Naps, Turn};
use crate::options::{
    END_AT, EPOCH, MAX_CONNECTIONS, MAX_LATENCY, MAX_PER_IP, MAX_QUEUE_AGE, MIN_LATENCY, PORT, RELAY,
    RELAY_CONNECT_TIMEOUT, RELAY_REPLY_TIMEOUT, RETRY_BASE, RETRY_MAX, SIM_LIMIT, SPOOL_WRITE, TICK, TWIN,
};
use crate::report::{Report, describe};
use crate::rng::{FNV0, fnv};
use crate::swarm::{Role, Scenario, Swarm, Task, swarm, swarm_in};
use crate::world::{Shared, World};

/// Only read by the injected bug `process-state-leak`.
static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Runs one seed to the end and judges it.
pub fn run(seed: u64, bugs: Bugs, verbose: bool) -> Report {
    run_swarm(seed, swarm(seed, bugs), verbose)
}

/// [`run`], with the seed's world drawn in `scenario`.
pub fn run_in(seed: u64, bugs: Bugs, scenario: Scenario, verbose: bool) -> Report {
    run_swarm(seed, swarm_in(seed, bugs, scenario), verbose)
}

/// Runs a seed's world, as drawn or cut down by the shrinker: `seed` still
/// drives the network and each actor's stream.
pub fn run_swarm(seed: u64, swarm: Swarm, verbose: bool) -> Report {
    let describe = describe(&swarm);
    let corpus_ips = swarm
        .actors
        .iter()
        .filter(|a| matches!(a.role, Role::CorpusSpammer))
        .map(|a| a.ip)
        .collect();
    let tls = crate::tls::SimTls::new(seed, swarm.exchangers.keys(), swarm.tls_exchangers.clone());
    let world: Shared = Rc::new(RefCell::new(World::new(
        swarm.config.clone(),
        corpus_ips,
        verbose,
        tls,
    )));
    let mut sim = turmoil::Builder::new()
        .epoch(SystemTime::UNIX_EPOCH + EPOCH)
        .rng_seed(seed)
        .simulation_duration(SIM_LIMIT)
        .tick_duration(TICK)
        .min_message_latency(MIN_LATENCY)
        .max_message_latency(MAX_LATENCY)
        .build();
    let policy =
        Arc::new(Policy::with_bugs(swarm.config.clone(), swarm.bugs).expect("swarm configs are valid"));
    for a in &swarm.actors {
        for t in &a.tasks {
            if let Task::Send { id, job, .. } = t {
                world.borrow_mut().bodies.insert(id.clone(), fnv(FNV0, &job.body));
            }
        }
    }
    {
        let world = world.clone();
        let exchangers = swarm.exchangers.clone();
        let policy = policy.clone();
        let held = swarm.held_body_max;
        sim.host(IpAddr::V4(RELAY), move || {
            let (world, policy, exchangers) = (world.clone(), policy.clone(), exchangers.clone());
            async move {
                // The relay's own restart (not its twin's start) ends the
                // sessions it held and the counts it kept in memory.
                checkers::hostile::relay_starts(&mut world.borrow_mut());
                // Accepts the crash cut off before their session began.
                world.borrow_mut().accepted.clear();
                relay(&world, &policy, &exchangers, held).run().await?;
                Ok(())
            }
        });
    }
    if let Some(ip) = swarm.proxying.host() {
        let world = world.clone();
        let proxying = swarm.proxying;
        sim.host(ip, move || crate::proxy::proxy(world.clone(), proxying));
    }
    // The exchangers' hosts are created at the relay's first connection
    // to them, and sleep while idle (`naps.rs`).
    world.borrow_mut().naps = Naps::new(swarm.exchangers.values().copied());
    let exchanger_hosts: BTreeMap<IpAddr, _> = swarm
        .exchangers
        .iter()
        .map(|(domain, &ip)| {
            let world = world.clone();
            let domain = domain.clone();
            let plain = swarm.plain_exchangers.contains(&ip);
            let policy = crate::exchanger::policy(&domain);
            let tls = world.borrow().tls.exchanger_server(&domain);
            let host = move || {
                exchanger(
                    world.clone(),
                    domain.clone(),
                    ip,
                    plain,
                    policy.clone(),
                    tls.clone(),
                )
            };
            (ip, host)
        })
        .collect();
    // An actor's host is created at the step its start falls in, not at
    // time zero: turmoil ticks every host it has on every step, and an
    // actor waiting for its start is one more to tick. Latest first, so
    // that the next due is popped from the end.
    let mut unborn: Vec<(Duration, usize)> = swarm
        .actors
        .iter()
        .enumerate()
        .map(|(i, a)| (a.start, i))
        .collect();
    unborn.sort_by(|a, b| b.cmp(a));

    // The active phase, faults on schedule, then the healed phase until
    // everything is delivered or END_AT.
    let mut faults = Scheduler::new(&swarm);
    loop {
        let now = sim.elapsed();
        world.borrow_mut().now = now;
        while let Some(&(_, i)) = unborn.last().filter(|(start, _)| *start < now + TICK) {
            unborn.pop();
            let a = &swarm.actors[i];
            // Each actor draws from its own stream: with one shared stream,
            // one actor's retry would shift every other actor's draws.
            let stream = seed
                .wrapping_mul(31)
                .wrapping_add(swarm.streams.get(i).copied().unwrap_or(i as u64));
            sim.client(a.ip, actor(world.clone(), a.clone(), stream));
            faults.born(&mut sim, a.ip);
        }
        faults.tick(&mut sim, &world, now);
        if faults.take_twin() {
            // The second instance starts on the spool while the first still
            // runs; on a locked spool it must refuse to start.
            let (world, policy, exchangers) = (world.clone(), policy.clone(), swarm.exchangers.clone());
            let held = swarm.held_body_max;
            sim.host(IpAddr::V4(TWIN), move || {
                let (world, policy, exchangers) = (world.clone(), policy.clone(), exchangers.clone());
                async move {
                    let node = relay(&world, &policy, &exchangers, held);
                    match node.run().await {
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            world.borrow_mut().fired("second instance refused");
                            Ok(())
                        }
                        r => r.map_err(Into::into),
                    }
                }
            });
        }
        // Turmoil's calls run the hosts' drop code, which may borrow the
        // world: no borrow is held across them.
        for (ip, turn) in naps::tick(&world, now) {
            match turn {
                Turn::Born => {
                    sim.host(ip, exchanger_hosts[&ip].clone());
                    faults.born(&mut sim, ip);
                }
                Turn::Wake => sim.bounce(ip),
                Turn::Sleep => sim.crash(ip),
            }
        }
        let done = match sim.step() {
            Ok(done) => done,
            Err(e) => {
                world
                    .borrow_mut()
                    .violation(Kind::Harness, format!("simulation error: {e}"));
                break;
            }
        };
        let w = world.borrow();
        let quiet = w.spool.queue.is_empty() && w.spool.writing == 0;
        drop(w);
        if faults.healed() && ((done && quiet && unborn.is_empty()) || sim.elapsed() >= END_AT) {
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
        fired: std::mem::take(&mut w.fired),
    }
}

/// A relay instance on the world's disk: the main relay at every (re)start,
/// and the second instance of the twin fault.
fn relay(
    world: &Shared,
    policy: &Arc<Policy>,
    exchangers: &BTreeMap<String, IpAddr>,
    held_body_max: usize,
) -> Rc<Node<TurmoilNet, SimSpool, SimResolver, SimMailboxes, SimTap>> {
    let mut nc = NodeConfig::new(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), PORT));
    nc.max_connections = MAX_CONNECTIONS;
    nc.max_per_ip = MAX_PER_IP;
    nc.connect_timeout = RELAY_CONNECT_TIMEOUT;
    nc.reply_timeout = RELAY_REPLY_TIMEOUT;
    nc.retry_base = RETRY_BASE;
    nc.retry_max = RETRY_MAX;
    nc.max_queue_age = MAX_QUEUE_AGE;
    nc.held_body_max = held_body_max;
    let offer = policy.config().tls.cert.is_some();
    (nc.tls_server, nc.tls_client) = {
        let (server, client) = world.borrow_mut().tls.relay_start(offer);
        (server, Some(client))
    };
    world.borrow_mut().event("relay starts");
    if policy.bugs().has(Bug::ProcessStateLeak) {
        // BUG process-state-leak: a count kept across runs reaches the trace.
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        world
            .borrow_mut()
            .event(&format!("runs in this process so far: {n}"));
    }
    let wall = (EPOCH + crate::world::elapsed()).as_secs();
    Node::new(
        policy.clone(),
        nc,
        TurmoilNet(world.clone()),
        SimSpool::open(world.clone(), SPOOL_WRITE, policy.bugs(), wall),
        SimResolver(exchangers.clone()),
        SimMailboxes {
            world: world.clone(),
            write: SPOOL_WRITE,
        },
        SimTap(world.clone()),
    )
}
