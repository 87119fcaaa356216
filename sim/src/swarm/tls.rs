//! What a seed decides about STARTTLS (RFC 3207): whether the relay offers
//! it and requires it for AUTH, which senders use it, which exchangers
//! offer it, and the spammers that pipeline commands behind it.
//!
//! Drawn after everything else, on the same stream: the configuration,
//! actors and faults a seed drew before STARTTLS existed stay as they were,
//! so that the seeds other tests look in keep their worlds (their runs
//! still move: the handshakes add traffic).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use relayguard_core::Config;

use super::{Actor, Role, Task};
use crate::options::FOREIGN;
use crate::rng::Rng;

/// The relay's certificate as the configuration names it. The simulation
/// hands the node its TLS configuration ready (`tls.rs`) and reads no
/// file; the name is there so that the policy, the oracle and a replayed
/// transcript know that the relay offers STARTTLS.
pub(crate) const RELAY_CERT: &str = "sim-relay.pem";

/// Sets the relay's TLS in `config`, marks the senders that use STARTTLS,
/// adds the injectors, and returns the foreign domains whose exchanger
/// offers STARTTLS.
pub(super) fn draw(
    r: &mut Rng,
    config: &mut Config,
    next_ip: &mut impl FnMut(&mut Rng) -> IpAddr,
    exchangers: &BTreeMap<String, IpAddr>,
    actors: &mut Vec<Actor>,
) -> BTreeSet<String> {
    let offered = r.chance(60);
    if offered {
        config.tls.cert = Some(RELAY_CERT.into());
        config.tls.key = Some(RELAY_CERT.into());
        // The default (AUTH only over TLS) most of the time; sometimes AUTH
        // in plain text as well, so that both shapes of the EHLO reply run.
        if r.chance(25) {
            config.auth.require_tls = Some(false);
        }
    }
    let auth_needs_tls = config.auth_requires_tls();
    for a in actors.iter_mut() {
        for t in &mut a.tasks {
            if let Task::Send { job, starttls, .. } = t {
                // A sender that authenticates where AUTH needs TLS must use
                // it, or its legitimate message would be refused.
                *starttls = r.chance(60) || (job.auth.is_some() && auth_needs_tls);
            }
        }
    }
    if r.chance(70) {
        let mut tasks = Vec::new();
        for _ in 0..1 + r.below(3) {
            tasks.push(Task::Inject {
                injected: injected(r),
            });
        }
        actors.push(Actor {
            role: Role::Injector,
            ip: next_ip(r),
            start: r.millis(0, 20_000),
            tasks,
            via: None,
        });
    }
    exchangers.keys().filter(|_| r.chance(50)).cloned().collect()
}

/// What an injector pipelines behind `STARTTLS`: a transaction to a
/// foreign recipient, which the relay must never run, neither before the
/// handshake nor after it as if it had come over TLS.
fn injected(r: &mut Rng) -> Vec<u8> {
    let f = r.pick(&FOREIGN[..3]);
    let mut out = format!("MAIL FROM:<spammer@{f}>\r\nRCPT TO:<victim@{f}>\r\n");
    if r.chance(50) {
        out.push_str("RSET\r\n");
    }
    if r.chance(30) {
        out.push_str("NOOP\r\n");
    }
    out.into_bytes()
}
