//! Faults: what can go wrong in the world, and the scheduler that makes it
//! go wrong on time.
//!
//! The swarm draws the plan; the scheduler plays it from the run loop,
//! between turmoil's steps, since turmoil's partitions, holds, crashes and
//! restarts are driven from outside the hosts.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use turmoil::Sim;

use crate::options::{HEAL_AT, HEALED_LATENCY, RELAY};
use crate::swarm::Swarm;
use crate::world::Shared;

/// A fault of the plan. The network faults are between the relay and one
/// other host, since the relay is what is under test.
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
    /// The exchanger answers every connection with 421 (`true`), or no
    /// longer (`false`).
    ExchangerFails(IpAddr, bool),
}

/// Plays the swarm's fault plan on the simulation, one tick at a time, and
/// heals the world at [`HEAL_AT`].
///
/// A crash is not played at its planned time but armed: the relay goes down
/// at the first tick where it is in the middle of something (a spool write,
/// or a message waiting for a retry), or at the end of the window. A crash
/// at a random instant would nearly always find the relay idle, and prove
/// nothing about durability.
pub(crate) struct Scheduler {
    relay: IpAddr,
    plan: std::iter::Peekable<std::vec::IntoIter<(Duration, Fault)>>,
    exchangers: Vec<IpAddr>,
    /// An armed crash: the latest time it fires, and whether it waits for a
    /// queued message rather than a write.
    crash_by: Option<(Duration, bool)>,
    down_for: Duration,
    restart_at: Option<Duration>,
    /// What the heal has to undo (turmoil does not say what is cut).
    partitioned: BTreeSet<IpAddr>,
    held: BTreeSet<IpAddr>,
    healed: bool,
}

impl Scheduler {
    pub(crate) fn new(swarm: &Swarm) -> Scheduler {
        Scheduler {
            relay: IpAddr::V4(RELAY),
            plan: swarm.faults.clone().into_iter().peekable(),
            exchangers: swarm.exchangers.values().copied().collect(),
            crash_by: None,
            down_for: Duration::ZERO,
            restart_at: None,
            partitioned: BTreeSet::new(),
            held: BTreeSet::new(),
            healed: false,
        }
    }

    /// Whether the world has healed: only then may the run end.
    pub(crate) fn healed(&self) -> bool {
        self.healed
    }

    /// Everything due at `now`, before the simulation steps: planned
    /// faults, an armed crash, a restart, the heal.
    pub(crate) fn tick(&mut self, sim: &mut Sim<'_>, world: &Shared, now: Duration) {
        let relay = self.relay;
        while self.plan.peek().is_some_and(|(at, _)| *at <= now) && !self.healed {
            let (_, f) = self.plan.next().expect("peeked");
            world.borrow_mut().event(&format!("fault {f:?}"));
            match f {
                Fault::Partition(ip) => {
                    sim.partition(relay, ip);
                    self.partitioned.insert(ip);
                }
                Fault::Repair(ip) => {
                    sim.repair(relay, ip);
                    self.partitioned.remove(&ip);
                }
                Fault::Hold(ip) => {
                    sim.hold(relay, ip);
                    self.held.insert(ip);
                }
                Fault::Release(ip) => {
                    sim.release(relay, ip);
                    self.held.remove(&ip);
                }
                Fault::Latency(ip, d) => sim.set_link_latency(relay, ip, d),
                Fault::Crash { within, down, queued } => {
                    // One crash at a time: a crash planned while another is
                    // armed or the relay is down is dropped.
                    if self.crash_by.is_none() && self.restart_at.is_none() {
                        self.crash_by = Some((now + within, queued));
                        self.down_for = down;
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
        if let Some((by, queued)) = self.crash_by {
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
                self.crash_by = None;
                self.restart_at = Some(now + self.down_for);
            }
        }
        if self.restart_at.is_some_and(|t| now >= t) {
            world.borrow_mut().event("fault restart relay");
            sim.bounce(relay);
            self.restart_at = None;
        }
        if !self.healed && now >= HEAL_AT {
            self.heal(sim, world);
        }
    }

    /// Lifts every fault still on, so that what follows judges the relay on
    /// a working network; plan entries not yet played are dropped.
    fn heal(&mut self, sim: &mut Sim<'_>, world: &Shared) {
        let relay = self.relay;
        self.healed = true;
        world.borrow_mut().event("heal");
        for ip in std::mem::take(&mut self.partitioned) {
            sim.repair(relay, ip);
        }
        for ip in std::mem::take(&mut self.held) {
            sim.release(relay, ip);
        }
        for ip in &self.exchangers {
            sim.set_link_latency(relay, *ip, HEALED_LATENCY);
        }
        world.borrow_mut().failing.clear();
        self.crash_by = None;
        if self.restart_at.take().is_some() {
            sim.bounce(relay);
        }
    }
}
