//! Faults: what can go wrong in the world, and the scheduler that makes it
//! go wrong on time.
//!
//! The swarm draws the plan; the scheduler plays it from the run loop,
//! between turmoil's steps, since turmoil's partitions, holds, crashes and
//! restarts are driven from outside the hosts.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use turmoil::Sim;

use crate::disk::{Errno, Junk, Op, QueueFile};
use crate::options::{HEAL_AT, HEALED_LATENCY, RELAY};
use crate::swarm::Swarm;
use crate::world::{Shared, World};

/// A fault of the plan. The network faults are between the relay and one
/// other host, since the relay is what is under test (for an actor behind
/// the proxy host, between the proxy and it: that is its link).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    Partition(IpAddr),
    Repair(IpAddr),
    Hold(IpAddr),
    Release(IpAddr),
    Latency(IpAddr, Duration),
    /// Crash the relay when it reaches `at` (a step of store → deliver →
    /// remove), or at the latest `within` later; restart it `down` later,
    /// with its wall clock set back if `clock_behind`, and with a bad file
    /// planted in the queue if `junk`.
    Crash {
        within: Duration,
        down: Duration,
        at: CrashPoint,
        clock_behind: bool,
        junk: Option<Junk>,
    },
    /// The next `times` calls of `op` on the relay's disk fail with `errno`.
    Disk {
        op: Op,
        errno: Errno,
        times: u32,
    },
    /// A second relay instance starts on the same spool while the first
    /// still runs (a restart that did not wait for the old process): it
    /// must find the spool locked. It waits until something is queued, or
    /// at the latest `within`.
    Twin {
        within: Duration,
    },
    /// The exchanger answers every connection with 421 (`true`), or no
    /// longer (`false`).
    ExchangerFails(IpAddr, bool),
}

/// Where in a message's life a crash lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CrashPoint {
    /// A spool write (store or update) is under way.
    Storing,
    /// A local delivery is under way (its mailbox file half written).
    Delivering,
    /// A message was delivered and its spool file not yet updated or
    /// removed: the at-least-once window.
    Delivered,
    /// A spool file is being removed.
    Removing,
    /// A message waits for a delivery retry.
    Queued,
}

impl CrashPoint {
    pub const ALL: [CrashPoint; 5] = [
        CrashPoint::Storing,
        CrashPoint::Delivering,
        CrashPoint::Delivered,
        CrashPoint::Removing,
        CrashPoint::Queued,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::Storing => "crash while storing",
            CrashPoint::Delivering => "crash while delivering",
            CrashPoint::Delivered => "crash after delivery before remove",
            CrashPoint::Removing => "crash while removing",
            CrashPoint::Queued => "crash while queued",
        }
    }

    fn reached(self, w: &World) -> bool {
        match self {
            CrashPoint::Storing => w.spool.writing > 0,
            CrashPoint::Delivering => w.mail.writing > 0,
            CrashPoint::Delivered => !w.unrecorded.is_empty(),
            CrashPoint::Removing => w.spool.removing > 0,
            CrashPoint::Queued => w.spool.deferred(),
        }
    }
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
    /// An armed crash: the latest time it fires, and where it waits to land.
    crash_by: Option<(Duration, CrashPoint)>,
    down_for: Duration,
    /// What the armed crash's restart brings: a clock set back, a bad file.
    restart_with: (bool, Option<Junk>),
    /// An armed second instance: the latest time it starts.
    twin_by: Option<Duration>,
    twin_started: bool,
    /// The second instance is to start now: the run loop creates its
    /// host (it does not exist before, so that turmoil does not tick it).
    twin_due: bool,
    restart_at: Option<Duration>,
    /// What the heal has to undo (turmoil does not say what is cut).
    partitioned: BTreeSet<IpAddr>,
    /// Actors behind the proxy → the proxy: their link to cut is to it.
    behind: BTreeMap<IpAddr, IpAddr>,
    held: BTreeSet<IpAddr>,
    /// Latencies set on links to the relay.
    latency: BTreeMap<IpAddr, Duration>,
    /// The hosts turmoil has: the actors and exchangers are created late
    /// (`run.rs`, `naps.rs`), and a link fault on one not yet created is
    /// only kept, then set when it is ([`Scheduler::born`]).
    born: BTreeSet<IpAddr>,
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
            restart_with: (false, None),
            twin_by: None,
            twin_started: false,
            twin_due: false,
            restart_at: None,
            partitioned: BTreeSet::new(),
            behind: swarm
                .actors
                .iter()
                .filter_map(|a| a.via.map(|p| (a.ip, p)))
                .collect(),
            held: BTreeSet::new(),
            latency: BTreeMap::new(),
            born: std::iter::once(IpAddr::V4(RELAY))
                .chain(swarm.proxying.host())
                .collect(),
            healed: false,
        }
    }

    /// `ip`'s host was just created: the link faults planned on it so far
    /// are set on its link now, as if it had been there all along.
    pub(crate) fn born(&mut self, sim: &mut Sim<'_>, ip: IpAddr) {
        self.born.insert(ip);
        if self.partitioned.contains(&ip) {
            sim.partition(self.link(ip), ip);
        }
        if self.held.contains(&ip) {
            sim.hold(self.relay, ip);
        }
        if let Some(&d) = self.latency.get(&ip) {
            sim.set_link_latency(self.relay, ip, d);
        }
    }

    /// The host on the other end of `ip`'s link to the relay: the proxy
    /// for an actor behind one, else the relay.
    fn link(&self, ip: IpAddr) -> IpAddr {
        self.behind.get(&ip).copied().unwrap_or(self.relay)
    }

    /// Whether the second instance is to start now; once.
    pub(crate) fn take_twin(&mut self) -> bool {
        std::mem::take(&mut self.twin_due)
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
                    if self.born.contains(&ip) {
                        sim.partition(self.link(ip), ip);
                    }
                    self.partitioned.insert(ip);
                }
                Fault::Repair(ip) => {
                    if self.born.contains(&ip) {
                        sim.repair(self.link(ip), ip);
                    }
                    self.partitioned.remove(&ip);
                }
                Fault::Hold(ip) => {
                    if self.born.contains(&ip) {
                        sim.hold(relay, ip);
                    }
                    self.held.insert(ip);
                }
                Fault::Release(ip) => {
                    if self.born.contains(&ip) {
                        sim.release(relay, ip);
                    }
                    self.held.remove(&ip);
                }
                Fault::Latency(ip, d) => {
                    if self.born.contains(&ip) {
                        sim.set_link_latency(relay, ip, d);
                    }
                    self.latency.insert(ip, d);
                }
                Fault::Crash {
                    within,
                    down,
                    at,
                    clock_behind,
                    junk,
                } => {
                    // One crash at a time: a crash planned while another is
                    // armed or the relay is down is dropped.
                    if self.crash_by.is_none() && self.restart_at.is_none() {
                        self.crash_by = Some((now + within, at));
                        self.down_for = down;
                        self.restart_with = (clock_behind, junk);
                    }
                }
                Fault::Disk { op, errno, times } => {
                    let mut w = world.borrow_mut();
                    let armed = w.disk.armed.entry(op).or_default();
                    armed.extend(std::iter::repeat_n(errno, times as usize));
                }
                Fault::Twin { within } => {
                    if !self.twin_started && self.twin_by.is_none() {
                        self.twin_by = Some(now + within);
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
        // Crash mid-transaction, at the point the plan chose.
        if let Some((by, at)) = self.crash_by {
            let ready = at.reached(&world.borrow());
            if ready || now >= by {
                let mut w = world.borrow_mut();
                w.event("fault crash relay");
                w.fired(if ready { at.name() } else { "crash at the deadline" });
                w.crash_disk();
                drop(w);
                sim.crash(relay);
                self.crash_by = None;
                self.restart_at = Some(now + self.down_for);
            }
        }
        if self.restart_at.is_some_and(|t| now >= t) {
            self.restart(sim, world);
        }
        // A second instance, while the first runs and something is queued.
        if let Some(by) = self.twin_by {
            let ready = !world.borrow().spool.queue.is_empty();
            if self.restart_at.is_none() && (ready || now >= by) {
                world.borrow_mut().event("fault second instance on the spool");
                self.twin_by = None;
                self.twin_started = true;
                self.twin_due = true;
            }
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
            if self.born.contains(&ip) {
                sim.repair(self.link(ip), ip);
            }
        }
        for ip in std::mem::take(&mut self.held) {
            if self.born.contains(&ip) {
                sim.release(relay, ip);
            }
        }
        for &ip in &self.exchangers {
            if self.born.contains(&ip) {
                sim.set_link_latency(relay, ip, HEALED_LATENCY);
            }
            self.latency.insert(ip, HEALED_LATENCY);
        }
        world.borrow_mut().failing.clear();
        world.borrow_mut().disk.armed.clear();
        self.crash_by = None;
        self.twin_by = None;
        if self.restart_at.is_some() {
            self.restart(sim, world);
        }
    }

    /// Restarts the relay, with what the crash's plan brings: its clock set
    /// back to the last start, a bad file in the queue beside the good ones.
    fn restart(&mut self, sim: &mut Sim<'_>, world: &Shared) {
        let (clock_behind, junk) = std::mem::take(&mut self.restart_with);
        let mut w = world.borrow_mut();
        w.event("fault restart relay");
        w.in_flight_at_crash.clear();
        w.spool.clock_behind = clock_behind;
        if let Some(junk) = junk {
            // A copy of a queued entry (or nothing, for a foreign file),
            // under a name no id takes.
            let entry = match junk {
                Junk::Foreign => None,
                _ => w.spool.queue.values().find_map(|f| f.entry.clone()),
            };
            let n = w.spool.corrupt.len() + w.spool.queue.len();
            let name = match junk {
                Junk::Foreign => format!(".Q{n}.swp"),
                _ => format!("Q999-{n:06}"),
            };
            w.event(&format!("fault {} planted as {name}", junk.name()));
            w.fired(junk.name());
            w.spool.queue.insert(
                name,
                QueueFile {
                    entry,
                    junk: Some(junk),
                },
            );
        }
        drop(w);
        sim.bounce(self.relay);
        self.restart_at = None;
    }
}
