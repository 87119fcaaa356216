//! The simulation's own proof: a fixed campaign passes and touches every
//! actor and fault, one seed gives one trace, and every injected bug makes
//! the same campaign fail.

use std::collections::BTreeSet;
use std::time::Duration;

use relayguard_core::check::ViolationKind;
use relayguard_core::check::buggify::{Bug, Bugs};
use relayguard_sim::{
    CrashPoint, Errno, Fault, Junk, Kind, Op, Proxying, Report, Role, Scenario, Swarm, Violation, campaign,
    campaign_in, first_difference, run, run_swarm, shrink_seed, swarm,
};

/// The fixed campaign of `cargo test`.
const SEEDS: std::ops::Range<u64> = 0..30;

fn seeds() -> Vec<u64> {
    SEEDS.collect()
}

fn failing(reports: &[Report]) -> Vec<(u64, Violation)> {
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
        Role::ChunkSpammer,
        Role::Flooder,
        Role::Slow,
        Role::Trickler,
        Role::NonReader,
        Role::Guesser,
        Role::Injector,
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
    every_tls_actor_fired(&reports);
    every_proxy_actor_fired(&reports);
    the_chunking_actors_fired(&reports);
    the_early_deliveries_fired(&reports);
}

/// Local mail delivered before the reply (a body held in memory), and
/// such a delivery failing (its recipient then queued), both happen in the
/// fixed seeds, and seeds hold bodies in each of the three ways.
fn the_early_deliveries_fired(reports: &[Report]) {
    for kind in ["delivered before the reply", "delivery before the reply failed"] {
        let n: u64 = reports.iter().filter_map(|r| r.fired.get(kind)).sum();
        assert!(n > 0, "{kind:?} never happened in the fixed seeds");
    }
    let held: std::collections::BTreeSet<usize> = seeds()
        .into_iter()
        .map(|s| swarm(s, Bugs::NONE).held_body_max)
        .collect();
    assert_eq!(held.len(), 3, "held_body_max drawn in the fixed seeds: {held:?}");
}

/// The STARTTLS actors prove nothing unless their handshakes happen: each
/// side of TLS must fire, not only be drawn, in the fixed seeds.
fn every_tls_actor_fired(reports: &[Report]) {
    let mut fired = std::collections::BTreeMap::new();
    for r in reports {
        for (k, n) in &r.fired {
            *fired.entry(k.clone()).or_insert(0u64) += n;
        }
    }
    let kinds = [
        // The relay finished a handshake after STARTTLS.
        "starttls handshake",
        // A sender (core's client) went on over TLS.
        "starttls sender",
        // An injector did the handshake after pipelining behind STARTTLS,
        // and one met a relay that does not offer it.
        "starttls injection, handshake done",
        "starttls injection, not offered",
        // The relay's plain-text octets after STARTTLS were thrown away.
        "starttls octets discarded",
        // The relay delivered to an exchanger over TLS.
        "starttls at an exchanger",
    ];
    let silent: Vec<&&str> = kinds.iter().filter(|k| !fired.contains_key(**k)).collect();
    assert!(
        silent.is_empty(),
        "never fired in the fixed seeds: {silent:?}; fired: {fired:?}"
    );
}

/// The proxy seeds prove nothing unless the proxy host named clients each
/// way, dropped a client's own XCLIENT, and spammers forged headers past
/// it, in the fixed seeds; and each way of proxying is drawn there.
fn every_proxy_actor_fired(reports: &[Report]) {
    let ways: BTreeSet<String> = SEEDS
        .map(|s| format!("{:?}", swarm(s, Bugs::NONE).proxying))
        .collect();
    for w in [
        Proxying::Direct,
        Proxying::Header(1),
        Proxying::Header(2),
        Proxying::Xclient,
    ] {
        assert!(
            ways.contains(&format!("{w:?}")),
            "no {w:?} seed in the fixed seeds: {ways:?}"
        );
    }
    let mut fired = std::collections::BTreeMap::new();
    for r in reports {
        for (k, n) in &r.fired {
            *fired.entry(k.as_str()).or_insert(0u64) += n;
        }
    }
    let silent: Vec<&str> = [
        "proxy: PROXY v1 header",
        "proxy: PROXY v2 header",
        "proxy: XCLIENT",
        "proxy: client's XCLIENT dropped",
        "spammer: forged PROXY header",
    ]
    .into_iter()
    .filter(|k| !fired.contains_key(k))
    .collect();
    assert!(
        silent.is_empty(),
        "never fired in the fixed seeds: {silent:?}; fired: {fired:?}"
    );
}

/// Docker's userland-proxy mistake: the proxy forwards without a header
/// from an address inside the LAN, so every client looks local. Its seeds
/// must fail as open relays (the wire oracle, judging the client the proxy
/// really carried, and the end-to-end check), and the same worlds behind a
/// correctly configured PROXY protocol proxy must pass: the harness sees
/// the setup, not something else in those worlds.
#[test]
fn the_misconfigured_proxy_is_reported_open_and_the_configured_one_passes() {
    let seeds: Vec<u64> = (0..8).collect();
    let bad = campaign_in(&seeds, Bugs::NONE, Scenario::MisconfiguredProxy, 2, |_| {});
    let open: Vec<u64> = bad
        .iter()
        .filter(|r| {
            r.violations.iter().any(|v| {
                matches!(v.kind, Kind::Wire(ViolationKind::OpenRelay) | Kind::OpenRelay)
                    && v.text.contains("the proxy, for")
                    || v.kind == Kind::OpenRelay
            })
        })
        .map(|r| r.seed)
        .collect();
    eprintln!("misconfigured proxy: open relay reported on seeds {open:?} of {seeds:?}");
    assert!(open.len() >= seeds.len() / 2, "open relay on {open:?} only");
    assert!(
        bad.iter()
            .any(|r| r.violations.iter().any(
                |v| v.kind == Kind::Wire(ViolationKind::OpenRelay) && v.text.contains("(the proxy, for")
            )),
        "the wire oracle saw no proxied outsider relaying"
    );
    let good = campaign_in(&seeds, Bugs::NONE, Scenario::ProxyProtocol, 2, |_| {});
    assert_eq!(failing(&good), vec![]);
}

/// BDAT that nobody sends proves nothing: in the fixed seeds, senders send
/// with BDAT, the BDAT spammer sends its tricks, and the relay delivers to
/// exchangers that offer CHUNKING (by BDAT) and to ones that do not (by
/// DATA).
fn the_chunking_actors_fired(reports: &[Report]) {
    for kind in [
        "client sent BDAT",
        "spammer sent BDAT",
        "relayed by BDAT",
        "relayed by DATA",
    ] {
        let n: u64 = reports.iter().filter_map(|r| r.fired.get(kind)).sum();
        assert!(n > 0, "{kind:?} never happened in the fixed seeds");
    }
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

/// The determinism checker finds nothing on the shipped code, and finds the
/// trace line where a leak of process state makes two runs part.
#[test]
fn the_determinism_check_bites() {
    assert_eq!(first_difference(5, Bugs::NONE), None);
    let d = first_difference(5, Bugs::NONE.with(Bug::ProcessStateLeak)).expect("two runs differ");
    assert!(d.contains("runs in this process so far"), "{d}");
}

/// A seed whose relay offers STARTTLS and whose senders and injector use
/// it: the handshakes draw from the seed, so two runs give one trace and
/// one hash, and the determinism checker finds no difference.
#[test]
fn a_seed_with_tls_gives_one_trace() {
    let seed = seeds()
        .into_iter()
        .find(|&s| {
            let w = swarm(s, Bugs::NONE);
            w.config.tls.cert.is_some() && w.actors.iter().any(|a| a.role == Role::Injector)
        })
        .expect("a fixed seed offers STARTTLS and has an injector");
    let a = run(seed, Bugs::NONE, true);
    let b = run(seed, Bugs::NONE, true);
    let handshakes = a.trace.iter().filter(|l| l.contains(" tls ")).count();
    assert!(handshakes > 0, "seed {seed}: no handshake in the trace");
    assert_eq!(a.trace, b.trace, "seed {seed}");
    assert_eq!(a.hash, b.hash, "seed {seed}");
    assert_eq!(first_difference(seed, Bugs::NONE), None);
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

fn caught(bug: Bug) -> Vec<(u64, Violation)> {
    caught_in(bug, &seeds())
}

fn caught_in(bug: Bug, seeds: &[u64]) -> Vec<(u64, Violation)> {
    let reports = campaign(seeds, Bugs::NONE.with(bug), 2, |_| {});
    let f = failing(&reports);
    eprintln!("{bug}: {} of {} seeds fail: {f:#?}", f.len(), reports.len());
    f
}

#[test]
fn the_campaign_catches_lf_ends_data() {
    let f = caught(Bug::LfEndsData);
    assert!(
        f.iter()
            .any(|(_, v)| v.kind == Kind::Wire(ViolationKind::SmuggledMessage)),
        "{f:#?}"
    );
}

#[test]
fn the_campaign_catches_bdat_bare_lf_passes() {
    let f = caught(Bug::BdatBareLfPasses);
    assert!(
        f.iter()
            .any(|(_, v)| v.kind == Kind::Wire(ViolationKind::BareLineEnding)),
        "{f:#?}"
    );
}

#[test]
fn the_campaign_catches_ack_before_store() {
    let f = caught(Bug::AckBeforeStore);
    assert!(f.iter().any(|(_, v)| v.kind == Kind::Loss), "{f:#?}");
}

#[test]
fn the_campaign_catches_forget_spool_on_restart() {
    let f = caught(Bug::ForgetSpoolOnRestart);
    assert!(f.iter().any(|(_, v)| v.kind == Kind::Loss), "{f:#?}");
}

#[test]
fn the_campaign_catches_trust_routed() {
    let f = caught(Bug::TrustRouted);
    assert!(
        f.iter()
            .any(|(_, v)| matches!(v.kind, Kind::Wire(ViolationKind::OpenRelay) | Kind::OpenRelay)),
        "{f:#?}"
    );
}

#[test]
fn the_campaign_catches_lan_check_off() {
    let f = caught(Bug::LanCheckOff);
    assert!(
        f.iter()
            .any(|(_, v)| matches!(v.kind, Kind::Wire(ViolationKind::OpenRelay) | Kind::OpenRelay)),
        "{f:#?}"
    );
}

/// Every injected bug the wire oracle catches leaves an offending session;
/// the shrinker cuts it to a few client lines that still fail with the bug
/// and pass without it.
#[test]
fn each_wire_bug_shrinks_to_a_few_lines() {
    use std::sync::Arc;

    use relayguard_core::Policy;
    use relayguard_core::check::replay::{Mode, replay};
    use relayguard_core::check::shrink;

    for bug in [
        Bug::TrustRouted,
        Bug::LanCheckOff,
        Bug::LfEndsData,
        Bug::KeepBufferAfterStarttls,
    ] {
        let bugs = Bugs::NONE.with(bug);
        let (seed, t) = seeds()
            .into_iter()
            .filter_map(|s| run(s, bugs, false).offending.map(|t| (s, t)))
            .next()
            .unwrap_or_else(|| panic!("{bug}: no seed of the fixed campaign left an offending session"));
        let config = swarm(seed, bugs).config;
        let with = Arc::new(Policy::with_bugs(config.clone(), bugs).unwrap());
        let without = Arc::new(Policy::new(config).unwrap());
        let s = shrink(&t, with.clone()).unwrap_or_else(|| panic!("{bug}: seed {seed}: nothing to shrink"));
        eprintln!(
            "{bug}: seed {seed}: {} client lines to {}:\n{}",
            s.lines_before,
            s.lines_after,
            s.transcript.to_text()
        );
        assert!(s.lines_after <= 8, "{bug}: {} lines left", s.lines_after);
        assert!(s.lines_after < s.lines_before, "{bug}: nothing removed");
        let on = replay(&s.transcript, with, Mode::Audit);
        assert!(
            on.violations.iter().any(|v| v.kind == s.kind),
            "{bug}: the shrunk session passes with the bug"
        );
        let off = replay(&s.transcript, without, Mode::Audit);
        assert!(
            off.violations.is_empty(),
            "{bug}: fails without the bug: {:?}",
            off.violations
        );
    }
}

/// Every injected bug of the relay (all but the harness's own
/// `process-state-leak`): its first failing seed shrinks to a few actors and
/// faults that still fail the same way with the bug and pass without it.
/// The node's bugs leave no offending session (a loss shows at the end), so
/// this is their smallest reproduction.
#[test]
fn each_bug_shrinks_to_a_few_actors_and_faults() {
    for bug in Bug::ALL.into_iter().filter(|&b| b != Bug::ProcessStateLeak) {
        let bugs = Bugs::NONE.with(bug);
        let seed = (0..60)
            .find(|&s| !run(s, bugs, false).passed())
            .unwrap_or_else(|| panic!("{bug}: no failing seed in the fixed campaign"));
        let s = shrink_seed(seed, bugs).expect("the seed fails");
        eprintln!("{bug}: seed {seed}: {:#?}", s.report.describe);
        assert!(
            s.swarm.actors.len() <= 3,
            "{bug}: {} actors",
            s.swarm.actors.len()
        );
        assert!(
            s.swarm.faults.len() <= 3,
            "{bug}: {} faults",
            s.swarm.faults.len()
        );
        assert!(s.swarm.actors.len() < s.actors_before, "{bug}: no actor removed");
        assert!(s.report.violations.iter().any(|v| v.kind == s.kind), "{bug}");
        let fixed = Swarm {
            bugs: Bugs::NONE,
            ..s.swarm.clone()
        };
        let off = run_swarm(seed, fixed, false);
        assert!(off.passed(), "{bug}: fails without the bug: {:?}", off.violations);
    }
}

#[test]
fn the_campaign_catches_bounce_on_transient() {
    let f = caught(Bug::BounceOnTransient);
    assert!(f.iter().any(|(_, v)| v.kind == Kind::Loss), "{f:#?}");
}

#[test]
fn the_campaign_catches_drop_failed_early_delivery() {
    let f = caught(Bug::DropFailedEarlyDelivery);
    assert!(f.iter().any(|(_, v)| v.kind == Kind::Loss), "{f:#?}");
}

#[test]
fn the_campaign_catches_recover_all_or_nothing() {
    let f = caught(Bug::RecoverAllOrNothing);
    assert!(
        f.iter()
            .any(|(_, v)| v.kind == Kind::Loss || v.kind == Kind::Stuck),
        "{f:#?}"
    );
}

#[test]
fn the_campaign_catches_reuse_queue_id() {
    // It bites in about one seed in twenty (a restart whose clock is behind,
    // then an id drawn twice): seeds 6, 17 and 34 of the 60.
    let f = caught_in(Bug::ReuseQueueId, &(0..60).collect::<Vec<_>>());
    assert!(
        f.iter()
            .any(|(_, v)| v.kind == Kind::Loss || v.kind == Kind::Stuck),
        "{f:#?}"
    );
}

#[test]
fn the_campaign_catches_no_spool_lock() {
    // The twin must start while a delivery is under way: rare enough that
    // since the spammers' forged XCLIENT moved every seed's draws, the
    // first seed that shows it is 45.
    let f = caught_in(Bug::NoSpoolLock, &(0..60).collect::<Vec<_>>());
    assert!(f.iter().any(|(_, v)| v.kind == Kind::Duplicate), "{f:#?}");
}

#[test]
fn the_campaign_catches_idle_timer_rearms() {
    let f = caught(Bug::IdleTimerRearms);
    assert!(f.iter().any(|(_, v)| v.kind == Kind::CommandDeadline), "{f:#?}");
    assert!(f.iter().any(|(_, v)| v.kind == Kind::DataDeadline), "{f:#?}");
}

#[test]
fn the_campaign_catches_no_write_timeout() {
    let f = caught(Bug::NoWriteTimeout);
    assert!(f.iter().any(|(_, v)| v.kind == Kind::SessionLifetime), "{f:#?}");
}

#[test]
fn the_campaign_catches_no_auth_throttle() {
    let f = caught(Bug::NoAuthThrottle);
    assert!(f.iter().any(|(_, v)| v.kind == Kind::AuthPause), "{f:#?}");
}

/// Spammers forge XCLIENT naming a LAN client from outside, and a PROXY
/// header straight to the relay past its proxy; with the bug the relay
/// believes them, and the wire oracle, which reads `proxy.trusted` itself,
/// still sees the outsider relaying. The forged header is caught on the
/// seeds with a PROXY protocol proxy, where the relay requires a header.
#[test]
fn the_campaign_catches_trust_any_proxy_header() {
    let bugs = Bugs::NONE.with(Bug::TrustAnyProxyHeader);
    let f = caught(Bug::TrustAnyProxyHeader);
    assert!(
        f.iter().any(
            |(_, v)| v.kind == Kind::Wire(ViolationKind::OpenRelay) && v.text.contains("XCLIENT")
                || v.text.contains("untrusted")
        ),
        "{f:#?}"
    );
    let header_seeds: Vec<u64> = SEEDS
        .filter(|&s| matches!(swarm(s, bugs).proxying, Proxying::Header(_)))
        .collect();
    let forged: Vec<u64> = campaign(&header_seeds, bugs, 2, |_| {})
        .iter()
        .filter(|r| {
            r.violations.iter().any(|v| {
                v.kind == Kind::Wire(ViolationKind::OpenRelay) && v.text.contains("in a PROXY header")
            })
        })
        .map(|r| r.seed)
        .collect();
    eprintln!("forged PROXY header believed on {forged:?} of the header seeds {header_seeds:?}");
    assert!(!forged.is_empty(), "no header seed caught a forged header");
}

/// Behind an XCLIENT proxy every client shares the proxy's address. Seeds
/// 97 and 171 of the default campaign failed liveness while the node
/// counted that address: a guesser behind the proxy used up its AUTH
/// allowance (97: a remote user refused AUTH), and the hostile actors its
/// per-address connections (171: a remote user held off for 76 s). Both
/// worlds must still be what made them fail, and pass.
#[test]
fn clients_behind_an_xclient_proxy_do_not_share_one_address_budget() {
    for seed in [97, 171] {
        let w = swarm(seed, Bugs::NONE);
        assert_eq!(w.proxying, Proxying::Xclient, "seed {seed}");
        for role in [Role::Guesser, Role::RemoteUser] {
            assert!(
                w.actors.iter().any(|a| a.role == role && a.via.is_some()),
                "seed {seed}: no {role:?} behind the proxy"
            );
        }
        let r = run(seed, Bugs::NONE, false);
        assert!(r.passed(), "seed {seed}: {:?}", r.violations);
    }
}

/// Injectors pipeline MAIL and RCPT behind STARTTLS; with the bug the relay
/// runs them after the handshake, and the wire oracle, which dropped them
/// at the handshake, sees replies that answer nothing.
#[test]
fn the_campaign_catches_keep_buffer_after_starttls() {
    let f = caught(Bug::KeepBufferAfterStarttls);
    assert!(
        f.iter()
            .any(|(_, v)| v.kind == Kind::Wire(ViolationKind::InjectedCommand)),
        "{f:#?}"
    );
}

/// The simulated second a trace line is at.
fn at(line: &str) -> f64 {
    line.split_whitespace()
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or(f64::MAX)
}

/// An exchanger's host is created at the relay's first connection to it,
/// and sleeps while idle (`sim/src/naps.rs`). A partition planned on its
/// link before it exists must still cut it once it does: a fixed seed that
/// delivers to an exchanger before 25 s, run again with that link cut from
/// the start until 29 s, delivers nothing there before 29 s, and still
/// delivers there afterwards. And the exchangers do sleep and wake.
#[test]
fn a_partition_before_an_exchanger_exists_cuts_it_once_it_does() {
    let traces: Vec<(u64, Vec<String>)> = seeds()
        .into_iter()
        .map(|s| (s, run(s, Bugs::NONE, true).trace))
        .collect();
    for turn in ["Born", "Sleep", "Wake"] {
        assert!(
            traces
                .iter()
                .any(|(_, t)| t.iter().any(|l| l.contains("exchanger ") && l.ends_with(turn))),
            "no exchanger {turn} in the fixed seeds"
        );
    }
    let (seed, domain) = traces
        .iter()
        .find_map(|(s, t)| {
            let l = t
                .iter()
                .find(|l| l.contains("arrival at exchanger") && at(l) < 25.0)?;
            let domain = l.split("arrival at exchanger ").nth(1)?.split(' ').next()?;
            Some((*s, domain.to_string()))
        })
        .expect("a fixed seed delivers to an exchanger before 25 s");
    let mut w = swarm(seed, Bugs::NONE);
    let ip = w.exchangers[&domain];
    w.faults.retain(|(_, f)| {
        !matches!(f, Fault::Partition(x) | Fault::Repair(x) | Fault::Hold(x) | Fault::Release(x) if *x == ip)
    });
    w.faults.push((Duration::ZERO, Fault::Partition(ip)));
    w.faults.push((Duration::from_secs(29), Fault::Repair(ip)));
    w.faults.sort_by_key(|f| f.0);
    let r = run_swarm(seed, w, true);
    let there = format!("arrival at exchanger {domain} ");
    let arrivals: Vec<&String> = r.trace.iter().filter(|l| l.contains(&there)).collect();
    let early: Vec<&&String> = arrivals.iter().filter(|l| at(l) < 29.0).collect();
    assert!(
        early.is_empty(),
        "seed {seed}: {domain} reached while cut off: {early:?}"
    );
    assert!(
        !arrivals.is_empty(),
        "seed {seed}: nothing reached {domain} after the repair"
    );
}
