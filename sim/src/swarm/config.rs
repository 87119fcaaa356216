//! A seed's relay configuration, and the LAN hosts that go with it.
//!
//! The draws cover the options that decide who may relay: the local domains,
//! the shape of the LAN list (CIDR, wildcard, range, single address), the
//! mailbox list, relaying to a backup domain, authentication, the percent
//! hack and the blacklist. A host is put in every LAN the seed lists, so the
//! matching of each shape is exercised end to end.

use std::net::{IpAddr, Ipv4Addr};

use relayguard_core::{Config, User};

use crate::options::{BACKUP, PROXY_HOST, RELAY, USERS};
use crate::rng::Rng;

/// Draws the configuration and the LAN hosts, in this order: the swarm's
/// later draws follow on the same stream, so reordering these changes every
/// seed's world.
pub(crate) fn draw(r: &mut Rng) -> (Config, Vec<IpAddr>) {
    let local: Vec<String> = match r.below(3) {
        0 => vec!["example.com".into()],
        1 => vec!["example.com".into(), "example.net".into()],
        _ => vec!["corp.example".into()],
    };
    let lan_shapes: [(&str, [u8; 4]); 4] = [
        ("192.168.1.0/24", [192, 168, 1, 0]),
        ("10.1.*.*", [10, 1, 7, 0]),
        ("10.2.3.10-20", [10, 2, 3, 10]),
        ("172.16.0.5", [172, 16, 0, 5]),
    ];
    let shape = *r.pick(&lan_shapes);
    let mut networks = vec![shape.0.to_string()];
    let mut lan_hosts = Vec::new();
    let n_lan = 1 + r.below(3) as u8;
    for i in 0..n_lan {
        let b = shape.1;
        let ip = match shape.0 {
            "172.16.0.5" => Ipv4Addr::new(172, 16, 0, 5),
            "10.2.3.10-20" => Ipv4Addr::new(10, 2, 3, 10 + i * 3),
            _ => Ipv4Addr::new(b[0], b[1], b[2], 10 + i),
        };
        if !lan_hosts.contains(&IpAddr::V4(ip)) {
            lan_hosts.push(IpAddr::V4(ip));
        }
    }
    if r.chance(30) {
        networks.push("192.168.50.0/24".into());
        lan_hosts.push(IpAddr::V4(Ipv4Addr::new(192, 168, 50, 7)));
    }
    let mut config = Config {
        hostname: format!("mail.{}", local[0]),
        own_addresses: vec![IpAddr::V4(RELAY)],
        ..Config::default()
    };
    config.domains.local = local.clone();
    if r.chance(60) {
        config.domains.mailboxes = Some(
            local
                .iter()
                .flat_map(|d| USERS.iter().map(move |u| format!("{u}@{d}")))
                .collect(),
        );
    }
    if r.chance(50) {
        config.domains.relay_to = vec![BACKUP.into()];
    }
    config.lan.networks = networks;
    config.relay.require_auth = r.chance(20);
    config.relay.non_local_senders_in_lan = r.chance(70);
    config.relay.percent_hack = r.chance(30);
    // Two users: one with the right to relay, one without, so that
    // authentication alone is never taken for permission.
    config.auth.users = vec![
        User {
            name: "carol".into(),
            password: "secret".into(),
            relay: true,
        },
        User {
            name: "dave".into(),
            password: "hunter2".into(),
            relay: false,
        },
    ];
    if r.chance(40) {
        config.lists.black = vec!["203.0.113.240/28".into(), "*@spam.example".into()];
    }
    config.limits.command_timeout_secs = 20 + r.below(20);
    config.limits.data_timeout_secs = 30;
    hostile_limits(&mut config);
    // Not drawn, so that every other draw stays as it was: the relay
    // trusts one proxy, which no outsider is, and takes PROXY headers and
    // XCLIENT from it alone; the spammers' forged ones must be refused.
    config.proxy = relayguard_core::Proxy {
        trusted: vec![PROXY_HOST.to_string()],
        header: relayguard_core::Header::Optional,
        xclient: true,
    };
    (config, lan_hosts)
}

/// The deadlines and throttles against hostile peers: fixed, not drawn, so
/// that the hostile actors' checkers know what to expect.
fn hostile_limits(config: &mut Config) {
    use crate::options::{AUTH_DELAY, AUTH_FAILURES_PER_IP, MIN_DATA_RATE, SESSION_TIMEOUT};
    let l = &mut config.limits;
    l.session_timeout_secs = SESSION_TIMEOUT.as_secs();
    l.min_data_rate = MIN_DATA_RATE;
    l.auth_failure_delay_ms = AUTH_DELAY.as_millis() as u64;
    l.auth_failures_per_ip = AUTH_FAILURES_PER_IP;
    l.auth_refusal_window_secs = 3600;
}
