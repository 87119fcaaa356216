//! Makes a failing seed small: drops actors, then faults, from its swarm
//! while the run still fails with the same kind of violation; what is left
//! is the few actors and faults a reader has to understand.

use relayguard_core::check::buggify::Bugs;
use relayguard_core::check::shrink::ddmin;

use std::net::IpAddr;

use crate::checkers::Kind;
use crate::faults::Fault;
use crate::report::Report;
use crate::run::{run, run_swarm};
use crate::swarm::{Actor, Swarm, swarm};

/// A failing seed's smallest world found, and its run.
pub struct ShrunkSeed {
    pub swarm: Swarm,
    pub report: Report,
    /// The violation kind kept.
    pub kind: Kind,
    pub actors_before: usize,
    pub faults_before: usize,
    /// How many runs the search took.
    pub tries: usize,
}

/// `None` when the seed passes.
pub fn shrink_seed(seed: u64, bugs: Bugs) -> Option<ShrunkSeed> {
    let kind = run(seed, bugs, false).violations.first()?.kind;
    let whole = swarm(seed, bugs);
    let (actors_before, faults_before) = (whole.actors.len(), whole.faults.len());
    let mut tries = 0;
    let mut fails = |s: &Swarm| {
        tries += 1;
        run_swarm(seed, s.clone(), false)
            .violations
            .iter()
            .any(|v| v.kind == kind)
    };
    let pairs: Vec<(Actor, u64)> = whole
        .actors
        .iter()
        .cloned()
        .zip(whole.streams.iter().copied())
        .collect();
    // Faults on the link of an actor that is gone go with it: there is no
    // link left to break.
    let with_actors = |s: &Swarm, p: &[(Actor, u64)]| {
        let hosts: Vec<IpAddr> = p
            .iter()
            .map(|(a, _)| a.ip)
            .chain(s.exchangers.values().copied())
            .collect();
        Swarm {
            actors: p.iter().map(|(a, _)| a.clone()).collect(),
            streams: p.iter().map(|(_, s)| *s).collect(),
            faults: s
                .faults
                .iter()
                .filter(|(_, f)| on_hosts(f, &hosts))
                .cloned()
                .collect(),
            ..s.clone()
        }
    };
    let kept = ddmin(pairs, &mut |p: &[(Actor, u64)]| fails(&with_actors(&whole, p)));
    let smaller = with_actors(&whole, &kept);
    let faults = ddmin(smaller.faults.clone(), &mut |f: &[_]| {
        fails(&Swarm {
            faults: f.to_vec(),
            ..smaller.clone()
        })
    });
    let smallest = Swarm { faults, ..smaller };
    let report = run_swarm(seed, smallest.clone(), true);
    Some(ShrunkSeed {
        swarm: smallest,
        report,
        kind,
        actors_before,
        faults_before,
        tries,
    })
}

/// Whether every host a fault names is still in the world.
fn on_hosts(f: &Fault, hosts: &[IpAddr]) -> bool {
    match f {
        Fault::Partition(ip)
        | Fault::Repair(ip)
        | Fault::Hold(ip)
        | Fault::Release(ip)
        | Fault::Latency(ip, _)
        | Fault::ExchangerFails(ip, _) => hosts.contains(ip),
        Fault::Crash { .. } | Fault::Disk { .. } | Fault::Twin { .. } => true,
    }
}
