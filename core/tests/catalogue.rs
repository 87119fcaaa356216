//! Every address form of the attack catalogue (docs/attacks.md "Address forms",
//! #1 to #18) against the policy, from an outsider and from a LAN
//! client, with the reply each must get.

use std::net::IpAddr;

use relayguard_core::parse_path;
use relayguard_core::{Command, parse_command};
use relayguard_core::{Context, Decision, Policy};

const CONFIG: &str = r#"
hostname = "mail.example.com"
own_addresses = ["198.51.100.25"]
[domains]
local = ["example.com"]
mailboxes = ["alice@example.com", "postmaster@example.com"]
relay_to = ["backup.example.org"]
[lan]
networks = ["192.168.1.0/24"]
"#;

/// What a RCPT must get: accepted, refused as a relay attempt (550 5.7.1),
/// refused as syntax (501), or refused as an unknown mailbox (550 5.1.1).
#[derive(Debug, PartialEq, Clone, Copy)]
enum Want {
    Accept,
    Relay,
    Syntax,
    Unknown,
}

fn decide(client: &str, from: &str, rcpt: &str) -> Want {
    let policy = Policy::from_toml(CONFIG).unwrap();
    let line = format!("RCPT TO:{rcpt}");
    let to = match parse_command(line.as_bytes()) {
        Ok(Command::Rcpt { to }) => match to.to_path() {
            Ok(p) => p,
            Err(_) => return Want::Syntax,
        },
        _ => return Want::Syntax,
    };
    let from = parse_path(from).unwrap();
    let ip: IpAddr = client.parse().unwrap();
    let ctx = Context {
        client: ip,
        helo: Some("probe.example"),
        user: None,
        sender: Some(&from),
        accepted: 0,
    };
    match policy.rcpt(&ctx, &to) {
        Decision::Accept { .. } => Want::Accept,
        Decision::Refuse(r) => match (r.reply.code, r.reply.enhanced.map(|e| (e.1, e.2))) {
            (550, Some((7, 1))) => Want::Relay,
            (550, Some((1, 1))) => Want::Unknown,
            (501, _) => Want::Syntax,
            other => panic!("unexpected refusal {other:?} for {rcpt}"),
        },
    }
}

const OUT: &str = "203.0.113.7";
const LAN: &str = "192.168.1.20";

#[test]
fn catalogue_rows() {
    use Want::*;
    let rows: &[(&str, &str, &str, Want, Want)] = &[
        // row, sender, recipient, from outside, from the LAN
        ("1", "<>", "<relaytest@nmap.scanme.org>", Relay, Accept),
        (
            "2",
            "<antispam@nmap.scanme.org>",
            "<relaytest@nmap.scanme.org>",
            Relay,
            Accept,
        ),
        (
            "3",
            "<antispam@mail.example.com>",
            "<relaytest@nmap.scanme.org>",
            Relay,
            Accept,
        ),
        (
            "4",
            "<antispam@localhost>",
            "<relaytest@nmap.scanme.org>",
            Relay,
            Accept,
        ),
        (
            "5",
            "<antispam@[198.51.100.25]>",
            "<relaytest@nmap.scanme.org>",
            Relay,
            Accept,
        ),
        (
            "6",
            "<antispam@[198.51.100.25]>",
            "<relaytest%nmap.scanme.org@[198.51.100.25]>",
            Relay,
            Unknown,
        ),
        (
            "6",
            "<antispam@[198.51.100.25]>",
            "<relaytest%nmap.scanme.org@mail.example.com>",
            Relay,
            Unknown,
        ),
        (
            "7",
            "<antispam@[198.51.100.25]>",
            "<\"relaytest@nmap.scanme.org\">",
            Relay,
            Syntax,
        ),
        (
            "8",
            "<antispam@[198.51.100.25]>",
            "<\"relaytest%nmap.scanme.org\">",
            Relay,
            Syntax,
        ),
        (
            "9",
            "<antispam@[198.51.100.25]>",
            "<relaytest@nmap.scanme.org@[198.51.100.25]>",
            Syntax,
            Syntax,
        ),
        (
            "9",
            "<antispam@[198.51.100.25]>",
            "<relaytest@nmap.scanme.org@mail.example.com>",
            Syntax,
            Syntax,
        ),
        (
            "10",
            "<antispam@[198.51.100.25]>",
            "<\"relaytest@nmap.scanme.org\"@[198.51.100.25]>",
            Relay,
            Unknown,
        ),
        (
            "11",
            "<antispam@[198.51.100.25]>",
            "<@[198.51.100.25]:relaytest@nmap.scanme.org>",
            Relay,
            Accept,
        ),
        (
            "11",
            "<antispam@[198.51.100.25]>",
            "<@mail.example.com:relaytest@nmap.scanme.org>",
            Relay,
            Accept,
        ),
        (
            "11",
            "<antispam@[198.51.100.25]>",
            "<@nmap.scanme.org:alice@example.com>",
            Accept,
            Accept,
        ),
        (
            "12",
            "<antispam@[198.51.100.25]>",
            "<nmap.scanme.org!relaytest>",
            Relay,
            Syntax,
        ),
        (
            "12",
            "<antispam@[198.51.100.25]>",
            "<nmap.scanme.org!relaytest@[198.51.100.25]>",
            Relay,
            Unknown,
        ),
        (
            "12",
            "<antispam@[198.51.100.25]>",
            "<nmap.scanme.org!relaytest@mail.example.com>",
            Relay,
            Unknown,
        ),
        (
            "13",
            "<a@b.example>",
            "<relaytest@nmap.scanme.org@>",
            Syntax,
            Syntax,
        ),
        (
            "14",
            "<a@b.example>",
            "<user%dom1.example@backup.example.org>",
            Relay,
            Accept,
        ),
        (
            "14",
            "<a@b.example>",
            "<dom1.example!user@backup.example.org>",
            Relay,
            Accept,
        ),
        (
            "14",
            "<a@b.example>",
            "<\"user@dom1.example\"@backup.example.org>",
            Relay,
            Accept,
        ),
        ("14", "<a@b.example>", "<user@backup.example.org>", Accept, Accept),
        ("15", "<a@b.example>", "<user@[321.1.2.3]>", Syntax, Syntax),
        ("15", "<a@b.example>", "<user@1.2.3>", Syntax, Syntax),
        ("15", "<a@b.example>", "<user@host:25>", Syntax, Syntax),
        ("15", "<a@b.example>", "<a%@example.com>", Relay, Unknown),
        (
            "16",
            "<a@b.example>",
            "<relaytest@nmap.scanme.org.>",
            Relay,
            Accept,
        ),
        ("16", "<a@b.example>", "<alice@EXAMPLE.com.>", Accept, Accept),
        ("17", "<a@b.example>", "<postmaster>", Accept, Accept),
        ("17", "<a@b.example>", "<PostMaster>", Accept, Accept),
        (
            "18",
            "<a@b.example>",
            "<nmap.scanme.org!u@example.com>",
            Relay,
            Unknown,
        ),
        (
            "18",
            "<a@b.example>",
            "<u%nmap.scanme.org@example.com>",
            Relay,
            Unknown,
        ),
    ];
    let mut wrong = Vec::new();
    for (row, from, rcpt, outside, lan) in rows {
        for (client, want) in [(OUT, outside), (LAN, lan)] {
            let got = decide(client, from, rcpt);
            if got != *want {
                wrong.push(format!(
                    "row {row}: {rcpt} from {client}: want {want:?}, got {got:?}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
