//! The exchangers exist from the relay's first connection to them, and
//! sleep while nobody talks to them.
//!
//! Turmoil's step costs per host it has (a clock read per link, and there
//! is a link between every two hosts) and per host whose software runs
//! (BENCHMARKS.md, issue 16); an exchanger is idle for all but a few
//! seconds of a run, and some are never connected to. So an exchanger's
//! host is created when the relay first connects to it; a crashed host is
//! not ticked, so an idle exchanger is crashed (it keeps no state of its
//! own: what it received is in the world) and restarted when the relay
//! next connects. The relay's connect asks for the wake and waits until
//! the exchanger listens, which costs it a tick or two of simulated time,
//! as a slower network would. A crashed host keeps its links and the faults
//! on them; the fault scheduler keeps those of a host not yet created and
//! sets them on its links when it is (`faults.rs`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::options::NAP_AFTER;
use crate::world::Shared;

/// What the run loop does to a napping host before the next step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Create its host: the first connection to it.
    Born,
    /// Restart it (`Sim::bounce`).
    Wake,
    /// Crash it (`Sim::crash`), so that turmoil stops ticking it.
    Sleep,
}

/// Every napping host: the exchangers.
#[derive(Default)]
pub(crate) struct Naps(BTreeMap<IpAddr, Nap>);

struct Nap {
    /// Connections to it being opened or open, and sessions in it.
    busy: usize,
    /// When it was last busy or wanted; never, at first.
    last_busy: Option<Duration>,
    asleep: bool,
    /// Its host exists.
    born: bool,
    /// A connect waits for it to wake.
    wanted: bool,
    /// Whether it listens: set by its software once bound, cleared when it
    /// is put to sleep.
    up: bool,
    /// Wakes the connects waiting for `up`. Not a `watch` channel: its
    /// waiters sit on one of several lists picked with tokio's thread RNG,
    /// which is not the seed's, and they woke in another order from one
    /// process to the next.
    listens: Rc<Notify>,
}

/// Something open on a napping host: it does not sleep while one is held.
pub(crate) struct Busy {
    world: Shared,
    ip: IpAddr,
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(n) = self.world.borrow_mut().naps.0.get_mut(&self.ip) {
            n.busy -= 1;
        }
    }
}

impl Naps {
    /// `ips` nap from the start: their hosts are not created yet.
    pub(crate) fn new(ips: impl Iterator<Item = IpAddr>) -> Naps {
        Naps(
            ips.map(|ip| {
                let nap = Nap {
                    busy: 0,
                    last_busy: None,
                    asleep: true,
                    born: false,
                    wanted: false,
                    up: false,
                    listens: Rc::new(Notify::new()),
                };
                (ip, nap)
            })
            .collect(),
        )
    }
}

/// Marks `ip` busy, if it naps, until the guard is dropped.
pub(crate) fn busy(world: &Shared, ip: IpAddr) -> Option<Busy> {
    let mut w = world.borrow_mut();
    let n = w.naps.0.get_mut(&ip)?;
    n.busy += 1;
    Some(Busy {
        world: world.clone(),
        ip,
    })
}

/// Before a connect to `ip`: if it naps, wakes it and waits until it
/// listens. The guard keeps it awake while the connection lives.
pub(crate) async fn wake(world: &Shared, ip: IpAddr) -> Option<Busy> {
    let guard = busy(world, ip)?;
    loop {
        let listens = {
            let mut w = world.borrow_mut();
            let n = w.naps.0.get_mut(&ip).expect("busy found it");
            if n.up {
                return Some(guard);
            }
            n.wanted = true;
            n.listens.clone()
        };
        // Created before `up` is read again, so that a wake in between is
        // not missed (`notify_waiters` wakes every future created before it).
        let notified = listens.notified();
        if world.borrow().naps.0.get(&ip).is_some_and(|n| n.up) {
            return Some(guard);
        }
        notified.await;
    }
}

/// The host's software listens again.
pub(crate) fn listening(world: &Shared, ip: IpAddr) {
    let listens = {
        let mut w = world.borrow_mut();
        let Some(n) = w.naps.0.get_mut(&ip) else {
            return;
        };
        n.up = true;
        n.listens.clone()
    };
    listens.notify_waiters();
}

/// Between steps: what to do to which host, the run loop does it. The
/// hosts a connect waits for are created or woken, the ones idle for
/// [`NAP_AFTER`] put to sleep.
pub(crate) fn tick(world: &Shared, now: Duration) -> Vec<(IpAddr, Turn)> {
    let mut turns = Vec::new();
    let mut w = world.borrow_mut();
    for (&ip, n) in &mut w.naps.0 {
        if n.busy > 0 || n.wanted {
            n.last_busy = Some(now);
        }
        if n.asleep && n.wanted {
            n.asleep = false;
            turns.push((ip, if n.born { Turn::Wake } else { Turn::Born }));
            n.born = true;
        } else if !n.asleep && n.busy == 0 && n.last_busy.is_none_or(|t| now >= t + NAP_AFTER) {
            n.asleep = true;
            n.up = false;
            turns.push((ip, Turn::Sleep));
        }
        n.wanted = false;
    }
    for (ip, t) in &turns {
        w.event(&format!("exchanger {ip}: {t:?}"));
    }
    turns
}
