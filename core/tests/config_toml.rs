//! `Config::to_toml` is the one writer of configurations (the simulation and
//! the fuzzers write theirs next to their findings): whatever the values,
//! reading its output back gives the same configuration.

use std::collections::BTreeMap;
use std::net::IpAddr;

use proptest::prelude::*;
use relayguard_core::{
    Access, Allow, Auth, Config, Domains, Header, Lan, Limits, Lists, Proxy, Relay, Tls, User,
};

/// Any text, including quotes, backslashes, newlines and non-ASCII.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9.@%!*\\[\\]:-]{0,20}",
        any::<String>().prop_map(|s| s.chars().take(12).collect()),
        Just("\"quoted@local\"\\\n\t".to_string()),
    ]
}

fn texts() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(text(), 0..4)
}

fn config() -> impl Strategy<Value = Config> {
    let head = (
        text(),
        prop::collection::vec(any::<IpAddr>(), 0..3),
        (texts(), prop::option::of(texts()), texts()),
        texts(),
        (
            prop_oneof![Just(Allow::Any), Just(Allow::Lan), Just(Allow::List)],
            texts(),
        ),
    );
    let relay = (any::<[bool; 6]>(), texts());
    let tail = (
        prop::collection::vec((text(), text(), any::<bool>()), 0..3),
        (texts(), texts(), any::<bool>(), any::<bool>()),
        // TOML integers are i64: larger values are not configurations.
        prop::array::uniform15(0..=i64::MAX as u64),
        prop::collection::btree_map(text(), text(), 0..3),
    );
    (head, relay, tail).prop_map(|(h, r, t)| {
        let (hostname, own_addresses, (local, mailboxes, relay_to), networks, (allow, list)) = h;
        let (
            [
                require_auth,
                non_local_senders_in_lan,
                outside_lan,
                percent_hack,
                bang_path,
                ack,
            ],
            always_from,
        ) = r;
        let (users, (black, white, rlso, rlho), n, routes) = t;
        Config {
            hostname,
            own_addresses,
            domains: Domains {
                local,
                mailboxes,
                relay_to,
                max_mailboxes: n[0] as usize,
            },
            lan: Lan { networks },
            access: Access { allow, list },
            relay: Relay {
                require_auth,
                non_local_senders_in_lan,
                outside_lan,
                always_from,
                percent_hack,
                bang_path,
                acknowledge_open_relay: ack,
            },
            auth: Auth {
                users: users
                    .into_iter()
                    .map(|(name, password, relay)| User {
                        name,
                        password,
                        relay,
                    })
                    .collect(),
                // Unset, off and on, drawn from bits the other fields use too.
                require_tls: ack.then_some(rlho),
            },
            tls: Tls {
                cert: rlso.then(|| "cert.pem".to_string()),
                key: rlso.then(|| "keys/key.pem".to_string()),
            },
            lists: Lists {
                black,
                white: white.clone(),
                reject_local_sender_outside: rlso,
                reject_local_helo_outside: rlho,
            },
            limits: Limits {
                max_recipients: n[0] as usize,
                max_message_size: n[1] as usize,
                max_errors: n[2] as usize,
                command_timeout_secs: n[3],
                data_timeout_secs: n[4],
                min_data_rate: n[5],
                session_timeout_secs: n[6],
                auth_failure_delay_ms: n[7],
                auth_failures_per_ip: n[8],
                auth_refusal_window_secs: n[9],
                connections_per_ip_per_minute: n[10],
                max_junk_commands: n[11] as usize,
                soft_error_limit: n[12] as usize,
                error_delay_ms: n[13],
                destination_concurrency_limit: n[14] as usize,
            },
            proxy: Proxy {
                trusted: white.clone(),
                header: [Header::Off, Header::Optional, Header::Required][(n[2] % 3) as usize],
                xclient: rlho,
            },
            routes: routes.into_iter().collect::<BTreeMap<_, _>>(),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn to_toml_reads_back_to_the_same_config(c in config()) {
        let text = c.to_toml();
        let back = Config::parse_toml(&text);
        prop_assert_eq!(back.as_ref().ok(), Some(&c), "{}\n{:?}", text, back);
    }
}
