use super::view::{NetRange, wildcard};
use super::*;

fn config() -> Config {
    Config::from_toml(
        r#"
hostname = "mail.example.com"
own_addresses = ["198.51.100.25"]
[domains]
local = ["example.com"]
relay_to = ["backup.example.org"]
[lan]
networks = ["192.168.1.0/24", "10.1.*.*", "10.2.3.10-20"]
[auth]
users = [{ name = "carol", password = "x", relay = true }, { name = "dave", password = "y" }]
"#,
    )
    .unwrap()
}

#[test]
fn foreign_by_the_design() {
    let v = ConfigView::new(&config());
    for local in [
        "alice@example.com",
        "alice@EXAMPLE.com.",
        "u@[198.51.100.25]",
        "u@mail.example.com",
        "postmaster",
        "u@backup.example.org",
        "@[198.51.100.25]:u@example.com",
        "\"alice\"@example.com",
        "<Postmaster>",
    ] {
        assert!(!v.is_foreign(local), "{local}");
    }
    for foreign in [
        "u@nmap.scanme.org",
        "u%nmap.scanme.org@example.com",
        "\"u@nmap.scanme.org\"@example.com",
        "nmap.scanme.org!u@example.com",
        "u%nmap.scanme.org@backup.example.org",
        "\"u@nmap.scanme.org\"",
        "\"u%nmap.scanme.org\"",
        "u@nmap.scanme.org@example.com",
        "@example.com:u@nmap.scanme.org",
        "bob",
        "u@[198.51.100.26]",
    ] {
        assert!(v.is_foreign(foreign), "{foreign}");
    }
}

#[test]
fn trust_by_the_design() {
    let v = ConfigView::new(&config());
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(v.is_trusted(ip("192.168.1.9"), None, "x@y.example"));
    assert!(v.is_trusted(ip("10.1.200.3"), None, "x@y.example"));
    assert!(v.is_trusted(ip("10.2.3.15"), None, ""));
    assert!(!v.is_trusted(ip("10.2.3.21"), None, ""));
    assert!(!v.is_trusted(ip("203.0.113.7"), None, "alice@example.com"));
    assert!(v.is_trusted(ip("203.0.113.7"), Some("carol"), ""));
    assert!(!v.is_trusted(ip("203.0.113.7"), Some("dave"), ""));
}

fn watch(peer: &str, client: &[&[u8]], server: &[&[u8]]) -> Verdict {
    let mut o = Oracle::new(&config(), peer.parse().unwrap());
    for s in server.iter().take(1) {
        o.server_bytes(s);
    }
    for (c, s) in client.iter().zip(server.iter().skip(1)) {
        o.client_bytes(c);
        o.server_bytes(s);
    }
    o.finish()
}

#[test]
fn catches_an_accepted_foreign_rcpt_from_outside() {
    let v = watch(
        "203.0.113.7",
        &[
            b"EHLO x\r\n",
            b"MAIL FROM:<a@b.example>\r\n",
            b"RCPT TO:<u%nmap.scanme.org@example.com>\r\n",
        ],
        &[
            b"220 hi\r\n",
            b"250 ok\r\n",
            b"250 2.1.0 ok\r\n",
            b"250 2.1.5 ok\r\n",
        ],
    );
    assert_eq!(v.violations.len(), 1, "{v:?}");
    assert_eq!(v.violations[0].kind, ViolationKind::OpenRelay);
    assert!(
        v.violations[0].why.contains("sender-specified routing"),
        "{}",
        v.violations[0]
    );
    assert!(
        v.violations[0].why.contains("not in the LAN"),
        "{}",
        v.violations[0]
    );
}

#[test]
fn refusals_and_lan_relaying_are_fine() {
    let v = watch(
        "203.0.113.7",
        &[
            b"EHLO x\r\n",
            b"MAIL FROM:<a@b.example>\r\n",
            b"RCPT TO:<u@nmap.scanme.org>\r\n",
        ],
        &[
            b"220 hi\r\n",
            b"250 ok\r\n",
            b"250 2.1.0 ok\r\n",
            b"550 5.7.1 no\r\n",
        ],
    );
    assert!(v.violations.is_empty(), "{v:?}");
    assert_eq!(v.stats.relay_refused, 1);
    let v = watch(
        "192.168.1.5",
        &[
            b"EHLO x\r\n",
            b"MAIL FROM:<a@b.example>\r\n",
            b"RCPT TO:<u@nmap.scanme.org>\r\n",
        ],
        &[
            b"220 hi\r\n",
            b"250 ok\r\n",
            b"250 2.1.0 ok\r\n",
            b"250 2.1.5 ok\r\n",
        ],
    );
    assert!(v.violations.is_empty(), "{v:?}");
    assert_eq!(v.stats.relayed, 1);
}

#[test]
fn auth_plain_success_makes_the_user_trusted_and_failure_does_not() {
    let ok = format!("AUTH PLAIN {}\r\n", BASE64.encode(b"\0carol\0x"));
    let steps: [&[u8]; 4] = [
        b"EHLO x\r\n",
        ok.as_bytes(),
        b"MAIL FROM:<>\r\n",
        b"RCPT TO:<u@f.example>\r\n",
    ];
    let v = watch(
        "203.0.113.7",
        &steps,
        &[
            b"220 hi\r\n",
            b"250 ok\r\n",
            b"235 ok\r\n",
            b"250 ok\r\n",
            b"250 ok\r\n",
        ],
    );
    assert!(v.violations.is_empty(), "{v:?}");
    let v = watch(
        "203.0.113.7",
        &steps,
        &[
            b"220 hi\r\n",
            b"250 ok\r\n",
            b"535 no\r\n",
            b"250 ok\r\n",
            b"250 ok\r\n",
        ],
    );
    assert_eq!(v.violations.len(), 1, "{v:?}");
}

#[test]
fn malformed_reply_lines_are_caught() {
    let v = watch("192.168.1.5", &[b"NOOP\r\n"], &[b"220 hi\r\n", b"250 ok\n"]);
    assert!(
        v.violations
            .iter()
            .any(|x| x.kind == ViolationKind::MalformedReply),
        "{v:?}"
    );
}

/// Lines are cut after LF or at 4097 octets whatever the split of the
/// bytes: an over-long reply line is one violation per 4097 octets, a good
/// line split anywhere is none.
#[test]
fn reply_lines_are_cut_the_same_in_any_split() {
    let mut long = vec![b'x'; 9000];
    long[..4].copy_from_slice(b"250 ");
    long.extend_from_slice(b"\r\n");
    let stream = [b"220 hi\r\n".as_slice(), &long, b"250 ok\r\n"].concat();
    let malformed = |split: usize| {
        let mut o = Oracle::new(&config(), "192.168.1.5".parse().unwrap());
        for piece in stream.chunks(split) {
            o.server_bytes(piece);
        }
        o.violations()
            .iter()
            .filter(|x| x.kind == ViolationKind::MalformedReply)
            .count()
    };
    // 9002 octets: two cuts at 4097 (too long, no CRLF), then 808 with CRLF
    // (fine on its own: it starts with 'x', so a bad code).
    let whole = malformed(stream.len());
    assert_eq!(whole, 3);
    for split in [1, 2, 7, 512, 4096, 4097, 4098] {
        assert_eq!(malformed(split), whole, "split {split}");
    }
}

#[test]
fn wildcards_and_ranges() {
    assert!(wildcard("*@spam.example", "x@spam.example"));
    assert!(!wildcard("*@spam.example", "x@spam.example.org"));
    assert!(wildcard("a*b*c", "axxbyyc"));
    assert!(
        NetRange::parse("10.2.3.10-20")
            .unwrap()
            .contains("10.2.3.20".parse().unwrap())
    );
    assert!(
        NetRange::parse("::/0")
            .unwrap()
            .contains("2001:db8::1".parse().unwrap())
    );
    assert!(NetRange::parse("10.1.*.*").is_some());
    assert!(NetRange::parse("10.1.*").is_none());
}
