//! The simulation's own proof: a fixed campaign passes and touches every
//! actor and fault, one seed gives one trace, and every injected bug makes
//! the same campaign fail.

use std::collections::BTreeSet;

use relayguard_core::check::buggify::{Bug, Bugs};
use relayguard_sim::{CrashPoint, Errno, Fault, Junk, Op, Report, Role, campaign, run, swarm};

/// The fixed campaign of `cargo test`.
const SEEDS: std::ops::Range<u64> = 0..30;

fn seeds() -> Vec<u64> {
    SEEDS.collect()
}

fn failing(reports: &[Report]) -> Vec<(u64, String)> {
    reports
        .iter()
        .filter(|r| !r.passed())
        .map(|r| (r.seed, r.violations[0].clone()))
        .collect()
}

#[test]
fn the_fixed_campaign_passes_and_touches_every_actor_and_fault() {
    let mut roles = BTreeSet::new();
    let mut faults = BTreeSet::new();
    for s in SEEDS {
        let w = swarm(s, Bugs::NONE);
        for a in &w.actors {
            roles.insert(a.role);
        }
        for (_, f) in &w.faults {
            faults.insert(match f {
                Fault::Partition(_) => "partition",
                Fault::Repair(_) => "repair",
                Fault::Hold(_) => "hold",
                Fault::Release(_) => "release",
                Fault::Latency(..) => "latency",
                Fault::Crash { .. } => "crash",
                Fault::ExchangerFails(..) => "exchanger fails",
                Fault::Disk { .. } => "disk",
                Fault::Twin { .. } => "second instance",
            });
        }
    }
    let all_roles = [
        Role::Lan,
        Role::RemoteUser,
        Role::Outsider,
        Role::CorpusSpammer,
        Role::Spammer,
        Role::Flooder,
        Role::Slow,
    ];
    for r in &all_roles {
        assert!(roles.contains(r), "no {r:?} in the fixed seeds");
    }
    assert_eq!(faults.len(), 9, "fault kinds touched: {faults:?}");

    let reports = campaign(&seeds(), Bugs::NONE, 2, |_| {});
    let sessions: u64 = reports.iter().map(|r| r.stats.sessions).sum();
    let deliveries: u64 = reports.iter().map(|r| r.stats.deliveries).sum();
    let refused: u64 = reports.iter().map(|r| r.stats.relay_refused).sum();
    assert!(
        sessions > 200 && deliveries > 50 && refused > 100,
        "{sessions} {deliveries} {refused}"
    );
    assert_eq!(failing(&reports), vec![]);
    every_storage_fault_fired(&reports);
}

/// A fault kind that never fires proves nothing: each must fire, not only
/// be planned, in the fixed seeds.
fn every_storage_fault_fired(reports: &[Report]) {
    let mut fired = std::collections::BTreeMap::new();
    for r in reports {
        for (k, n) in &r.fired {
            *fired.entry(k.clone()).or_insert(0u64) += n;
        }
    }
    let mut kinds: Vec<&str> = Vec::new();
    kinds.extend(Op::ALL.map(Op::name));
    kinds.extend(Errno::ALL.map(Errno::name));
    kinds.extend(CrashPoint::ALL.map(CrashPoint::name));
    kinds.extend([Junk::Corrupt, Junk::Truncated, Junk::Foreign].map(Junk::name));
    kinds.extend(["torn write", "clock behind at restart", "second instance refused"]);
    let silent: Vec<&&str> = kinds.iter().filter(|k| !fired.contains_key(**k)).collect();
    assert!(
        silent.is_empty(),
        "never fired in the fixed seeds: {silent:?}; fired: {fired:?}"
    );
}

#[test]
fn one_seed_gives_one_trace() {
    let a = run(3, Bugs::NONE, true);
    let b = run(3, Bugs::NONE, true);
    assert!(a.trace.len() > 50, "{}", a.trace.len());
    assert_eq!(a.trace, b.trace);
    assert_eq!(a.hash, b.hash);
    let c = run(4, Bugs::NONE, false);
    assert_ne!(a.hash, c.hash);
}

fn caught(bug: Bug) -> Vec<(u64, String)> {
    let reports = campaign(&seeds(), Bugs::NONE.with(bug), 2, |_| {});
    let f = failing(&reports);
    eprintln!("{bug}: {} of {} seeds fail: {f:#?}", f.len(), reports.len());
    f
}

#[test]
fn the_campaign_catches_lf_ends_data() {
    let f = caught(Bug::LfEndsData);
    assert!(f.iter().any(|(_, v)| v.contains("smuggled message")), "{f:#?}");
}

#[test]
fn the_campaign_catches_ack_before_store() {
    let f = caught(Bug::AckBeforeStore);
    assert!(f.iter().any(|(_, v)| v.starts_with("loss:")), "{f:#?}");
}

#[test]
fn the_campaign_catches_forget_spool_on_restart() {
    let f = caught(Bug::ForgetSpoolOnRestart);
    assert!(f.iter().any(|(_, v)| v.starts_with("loss:")), "{f:#?}");
}

#[test]
fn the_campaign_catches_trust_routed() {
    let f = caught(Bug::TrustRouted);
    assert!(f.iter().any(|(_, v)| v.contains("open relay")), "{f:#?}");
}

#[test]
fn the_campaign_catches_lan_check_off() {
    let f = caught(Bug::LanCheckOff);
    assert!(f.iter().any(|(_, v)| v.contains("open relay")), "{f:#?}");
}

#[test]
fn the_campaign_catches_bounce_on_transient() {
    let f = caught(Bug::BounceOnTransient);
    assert!(f.iter().any(|(_, v)| v.starts_with("loss:")), "{f:#?}");
}

#[test]
fn the_campaign_catches_recover_all_or_nothing() {
    let f = caught(Bug::RecoverAllOrNothing);
    assert!(
        f.iter()
            .any(|(_, v)| v.starts_with("loss:") || v.contains("still queued")),
        "{f:#?}"
    );
}

#[test]
fn the_campaign_catches_reuse_queue_id() {
    let f = caught(Bug::ReuseQueueId);
    assert!(
        f.iter()
            .any(|(_, v)| v.starts_with("loss:") || v.contains("still queued")),
        "{f:#?}"
    );
}

#[test]
fn the_campaign_catches_no_spool_lock() {
    let f = caught(Bug::NoSpoolLock);
    assert!(f.iter().any(|(_, v)| v.starts_with("duplicate:")), "{f:#?}");
}
