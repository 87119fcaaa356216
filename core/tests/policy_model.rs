//! The relay policy against an independent reference model written here,
//! over random configurations, clients, authentication states, senders and
//! recipients. The generator knows what each address *is* (a local mailbox,
//! a foreign one, a routed one, ...) and spells it in any of the ways an
//! attacker would: case, trailing dot, IDNA, address literals, quotes. The
//! model decides from what it is; the policy must decide the same from how
//! it is spelled.

use std::net::IpAddr;

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};
use relayguard_core::check::buggify::{Bug, Bugs};
use relayguard_core::parse_path;
use relayguard_core::{Config, User};
use relayguard_core::{Context, Decision, Destination, Policy};

#[derive(Clone, Debug)]
struct Options {
    require_auth: bool,
    non_local_senders_in_lan: bool,
    percent_hack: bool,
    bang_path: bool,
    mailboxes: bool,
    /// Reverses every list, to show that order does not matter.
    reversed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Auth {
    None,
    Relay,
    NoRelay,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Sender {
    Null,
    Local,
    Foreign,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Route {
    Percent,
    Bang,
    QuotedAt,
}

/// What a recipient is.
#[derive(Clone, Debug)]
enum Kind {
    LocalKnown,
    LocalUnknown,
    Foreign,
    RelayTo,
    /// A foreign mailbox hidden in the local part, at a local domain or at
    /// the relay_to domain.
    Routed {
        route: Route,
        at_relay_to: bool,
    },
    Postmaster,
}

#[derive(Clone, Debug)]
struct Case {
    options: Options,
    in_lan: bool,
    auth: Auth,
    sender: Sender,
    kind: Kind,
    /// How the address is written.
    spelling: String,
}

fn local_domain() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "example.com",
        "EXAMPLE.COM",
        "Example.Com.",
        "example.net",
        "[198.51.100.25]",
        "mail.example.com",
        "MAIL.example.com.",
    ])
    .prop_map(str::to_string)
}

fn foreign_domain() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "nmap.scanme.org",
        "NMAP.scanme.org.",
        "bücher.example",
        "xn--bcher-kva.example",
        "example.com.evil.example",
        "[203.0.113.50]",
        "[IPv6:2001:db8::25]",
    ])
    .prop_map(str::to_string)
}

fn relay_to_domain() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["backup.example.org", "BACKUP.example.org."]).prop_map(str::to_string)
}

fn kind_and_spelling() -> impl Strategy<Value = (Kind, String)> {
    let known = prop::sample::select(vec!["alice", "Alice", "bob", "\"bob\""]);
    prop_oneof![
        (known, local_domain()).prop_map(|(l, d)| (Kind::LocalKnown, format!("<{l}@{d}>"))),
        local_domain().prop_map(|d| (Kind::LocalUnknown, format!("<nobody@{d}>"))),
        foreign_domain().prop_map(|d| (Kind::Foreign, format!("<relaytest@{d}>"))),
        (local_domain(), foreign_domain())
            .prop_map(|(l, f)| (Kind::Foreign, format!("<@{l}:relaytest@{f}>"))),
        relay_to_domain().prop_map(|d| (Kind::RelayTo, format!("<someone@{d}>"))),
        (
            prop::sample::select(vec![Route::Percent, Route::Bang, Route::QuotedAt]),
            any::<bool>(),
            local_domain(),
            relay_to_domain(),
            prop::sample::select(vec!["nmap.scanme.org", "NMAP.scanme.org"]),
        )
            .prop_map(|(route, at_relay_to, l, r, f)| {
                let at = if at_relay_to { r } else { l };
                let text = match route {
                    Route::Percent => format!("<relaytest%{f}@{at}>"),
                    Route::Bang => format!("<{f}!relaytest@{at}>"),
                    Route::QuotedAt => format!("<\"relaytest@{f}\"@{at}>"),
                };
                (Kind::Routed { route, at_relay_to }, text)
            }),
        prop::sample::select(vec!["<postmaster>", "<POSTMASTER>", "<Postmaster@example.net>"])
            .prop_map(|s| (Kind::Postmaster, s.to_string())),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
        any::<bool>(),
        prop::sample::select(vec![Auth::None, Auth::Relay, Auth::NoRelay]),
        prop::sample::select(vec![Sender::Null, Sender::Local, Sender::Foreign]),
        kind_and_spelling(),
    )
        .prop_map(
            |((ra, nl, ph, bp, mb, rev), in_lan, auth, sender, (kind, spelling))| Case {
                options: Options {
                    require_auth: ra,
                    non_local_senders_in_lan: nl,
                    percent_hack: ph,
                    bang_path: bp,
                    mailboxes: mb,
                    reversed: rev,
                },
                in_lan,
                auth,
                sender,
                kind,
                spelling,
            },
        )
}

fn config(o: &Options) -> Config {
    let lists = |mut v: Vec<&str>| {
        if o.reversed {
            v.reverse();
        }
        v.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let mut c = Config {
        hostname: "mail.example.com".into(),
        own_addresses: vec!["198.51.100.25".parse().unwrap()],
        ..Config::default()
    };
    c.domains.local = lists(vec!["example.com", "example.net"]);
    c.domains.relay_to = lists(vec!["backup.example.org"]);
    if o.mailboxes {
        c.domains.mailboxes = Some(lists(vec![
            "alice@example.com",
            "bob@example.com",
            "postmaster@example.com",
        ]));
    }
    c.lan.networks = lists(vec!["192.168.1.0/24", "10.1.*.*", "172.16.0.5"]);
    c.relay.require_auth = o.require_auth;
    c.relay.non_local_senders_in_lan = o.non_local_senders_in_lan;
    c.relay.percent_hack = o.percent_hack;
    c.relay.bang_path = o.bang_path;
    c.auth.users = vec![
        User {
            name: "carol".into(),
            password: "x".into(),
            relay: true,
        },
        User {
            name: "dave".into(),
            password: "y".into(),
            relay: false,
        },
    ];
    if o.reversed {
        c.auth.users.reverse();
    }
    c
}

/// The reference model: docs/design.md "Local, foreign and trusted" over what the addresses are.
/// `None` means MAIL is refused; otherwise whether RCPT is accepted.
fn model(c: &Case) -> Option<bool> {
    let o = &c.options;
    let authed = c.auth != Auth::None;
    if c.sender == Sender::Local && !c.in_lan && !authed {
        return None; // reject_local_sender_outside
    }
    let trusted = c.auth == Auth::Relay
        || (c.in_lan && !o.require_auth && (o.non_local_senders_in_lan || c.sender == Sender::Local));
    Some(match c.kind {
        Kind::LocalKnown | Kind::Postmaster | Kind::RelayTo => true,
        Kind::LocalUnknown => !o.mailboxes,
        Kind::Foreign => trusted,
        Kind::Routed { route, at_relay_to } => {
            if !trusted {
                false
            } else if at_relay_to {
                true
            } else {
                let rewritten = match route {
                    Route::Percent => o.percent_hack,
                    Route::Bang => o.bang_path,
                    Route::QuotedAt => false,
                };
                // Rewritten: relayed for the trusted client; otherwise a
                // literal local part, which no listed mailbox has.
                rewritten || !o.mailboxes
            }
        }
    })
}

fn check(c: &Case, bugs: Bugs) -> Result<(), String> {
    let policy = Policy::with_bugs(config(&c.options), bugs).map_err(|e| e.to_string())?;
    let client: IpAddr = if c.in_lan { "10.1.7.7" } else { "203.0.113.7" }.parse().unwrap();
    let sender = parse_path(match c.sender {
        Sender::Null => "<>",
        Sender::Local => "<alice@example.com>",
        Sender::Foreign => "<s@elsewhere.example>",
    })
    .unwrap();
    let user = match c.auth {
        Auth::None => None,
        Auth::Relay => Some("carol"),
        Auth::NoRelay => Some("dave"),
    };
    let ctx = Context {
        client,
        helo: Some("client.example"),
        user,
        sender: Some(&sender),
        accepted: 0,
    };
    let mail_ok = policy.mail(&ctx, &sender).is_ok();
    let expected = model(c);
    if expected.is_none() {
        return if mail_ok {
            Err("MAIL accepted, the model refuses it".into())
        } else {
            Ok(())
        };
    }
    if !mail_ok {
        return Err("MAIL refused, the model accepts it".into());
    }
    let to = parse_path(&c.spelling).map_err(|e| format!("generator wrote a bad address: {e}"))?;
    let decision = policy.rcpt(&ctx, &to);
    let accepted = matches!(decision, Decision::Accept { .. });
    if Some(accepted) != expected {
        return Err(format!("policy {decision:?}, model accepts: {expected:?}"));
    }
    // A foreign mailbox never lands in a local one, and the reverse.
    if let Decision::Accept { destination, .. } = &decision {
        let local = destination.is_local();
        let should_be_local = matches!(c.kind, Kind::LocalKnown | Kind::LocalUnknown | Kind::Postmaster)
            || matches!(c.kind, Kind::Routed { at_relay_to: false, route }
                if !(route == Route::Percent && c.options.percent_hack || route == Route::Bang && c.options.bang_path));
        if local != should_be_local {
            return Err(format!("destination {destination:?} for {:?}", c.kind));
        }
        if let Destination::Remote { mailbox } = destination {
            if matches!(c.kind, Kind::Routed { .. })
                && mailbox.domain.as_ref().map(|d| d.to_string()).as_deref() != Some("nmap.scanme.org")
            {
                return Err(format!("routed address rewritten to {mailbox}"));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn policy_agrees_with_the_reference_model(c in case()) {
        if let Err(e) = check(&c, Bugs::NONE) {
            prop_assert!(false, "{e}\n{c:#?}");
        }
    }
}

/// Runs the model check with a bug switched on and returns the first
/// counterexample, with a fixed seed so the result repeats.
fn counterexample(bug: Bug) -> Option<(Case, String)> {
    let mut runner = TestRunner::new_with_rng(
        RunnerConfig {
            cases: 5_000,
            failure_persistence: None,
            ..RunnerConfig::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let found = std::cell::RefCell::new(None);
    let _ = runner.run(&case(), |c| {
        if let Err(e) = check(&c, Bugs::NONE.with(bug)) {
            found.borrow_mut().get_or_insert((c.clone(), e));
            return Err(proptest::test_runner::TestCaseError::fail("found"));
        }
        Ok(())
    });
    found.into_inner()
}

#[test]
fn the_model_catches_a_policy_that_trusts_routed_addresses() {
    let (c, why) = counterexample(Bug::TrustRouted).expect("trust-routed must be caught");
    assert!(matches!(c.kind, Kind::Routed { .. }), "{c:?}: {why}");
}

#[test]
fn the_model_catches_a_policy_that_forgets_the_lan_check() {
    let (c, why) = counterexample(Bug::LanCheckOff).expect("lan-check-off must be caught");
    assert!(!c.in_lan, "{c:?}: {why}");
}

#[test]
fn the_model_finds_nothing_without_a_bug() {
    assert!(
        counterexample(Bug::LfEndsData).is_none(),
        "a session bug cannot change a policy decision"
    );
}

/// A local part listed under two local domains names one mailbox, the
/// smallest of the two, whichever comes first in the list: the recipient
/// under either domain lands in the same place.
#[test]
fn a_local_part_listed_twice_names_one_mailbox_whatever_the_order() {
    let mut names = Vec::new();
    for reversed in [false, true] {
        let mut c = config(&Options {
            require_auth: false,
            non_local_senders_in_lan: false,
            percent_hack: false,
            bang_path: false,
            mailboxes: true,
            reversed,
        });
        let mut listed = vec!["alice@example.net".to_string(), "alice@example.com".to_string()];
        if reversed {
            listed.reverse();
        }
        c.domains.mailboxes = Some(listed);
        let policy = Policy::new(c).unwrap();
        let sender = parse_path("<s@elsewhere.example>").unwrap();
        let ctx = Context {
            client: "203.0.113.7".parse().unwrap(),
            helo: Some("client.example"),
            user: None,
            sender: Some(&sender),
            accepted: 0,
        };
        for to in ["<alice@example.net>", "<ALICE@example.com>"] {
            match policy.rcpt(&ctx, &parse_path(to).unwrap()) {
                Decision::Accept {
                    destination: Destination::Local { mailbox },
                    ..
                } => names.push(mailbox),
                d => panic!("{to}: {d:?}"),
            }
        }
    }
    assert_eq!(names, vec!["alice@example.com"; 4]);
}
