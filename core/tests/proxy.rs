//! Who the client is when a proxy says so: XCLIENT and the PROXY header,
//! believed from `proxy.trusted` only (issue 15). Each defence is shown to
//! bite: with the injected bug `trust-any-proxy-header` the same sessions
//! relay for an outsider and the oracle reports an open relay.

use std::net::IpAddr;
use std::sync::Arc;

use relayguard_core::check::buggify::{Bug, Bugs};
use relayguard_core::check::drive::Driver;
use relayguard_core::proxy::{self, Front, ProxyError, ProxyHeader};
use relayguard_core::{Config, Peer, Policy};

const CONFIG: &str = r#"
hostname = "mail.example.com"
[domains]
local = ["example.com"]
[lan]
networks = ["192.168.1.0/24"]
[proxy]
trusted = ["10.0.0.5"]
header = "optional"
xclient = true
"#;

const PROXY: &str = "10.0.0.5";
const LAN: &str = "192.168.1.10";
const OUTSIDE: &str = "203.0.113.7";
const RELAY: &[u8] = b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<victim@foreign.example>\r\nQUIT\r\n";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn policy(bugs: Bugs) -> Arc<Policy> {
    Arc::new(Policy::with_bugs(Config::from_toml(CONFIG).unwrap(), bugs).unwrap())
}

fn text(d: &Driver) -> String {
    String::from_utf8_lossy(&d.run.sent).into_owned()
}

#[test]
fn xclient_from_a_trusted_proxy_names_the_client_and_the_lan_relays() {
    let mut d = Driver::new(policy(Bugs::NONE), ip(PROXY));
    d.feed(b"EHLO proxy\r\n");
    assert!(text(&d).contains("250-XCLIENT ADDR"), "{}", text(&d));
    d.feed(format!("XCLIENT ADDR={LAN} NAME=pc.lan\r\n").as_bytes());
    assert!(
        text(&d).ends_with("220 mail.example.com ESMTP relayguard\r\n"),
        "{}",
        text(&d)
    );
    assert_eq!(
        d.session.peer(),
        Peer {
            ip: ip(LAN),
            via: Some(ip(PROXY))
        }
    );
    d.feed(RELAY);
    let (run, verdict) = d.finish();
    let wire = String::from_utf8_lossy(&run.sent);
    assert!(wire.contains("250 2.1.5"), "{wire}");
    assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
}

#[test]
fn xclient_from_outside_is_refused_and_changes_nothing() {
    let mut d = Driver::new(policy(Bugs::NONE), ip(OUTSIDE));
    d.feed(b"EHLO x\r\n");
    assert!(
        !text(&d).contains("XCLIENT"),
        "offered to an outsider: {}",
        text(&d)
    );
    d.feed(format!("XCLIENT ADDR={LAN}\r\n").as_bytes());
    assert!(
        text(&d).ends_with("550 5.7.0 Error: insufficient authorization\r\n"),
        "{}",
        text(&d)
    );
    assert_eq!(d.session.peer(), Peer::direct(ip(OUTSIDE)));
    d.feed(RELAY);
    let (run, verdict) = d.finish();
    assert!(!String::from_utf8_lossy(&run.sent).contains("250 2.1.5"));
    assert!(verdict.violations.is_empty());
}

#[test]
fn trust_any_proxy_header_lets_an_outsider_relay_and_the_oracle_sees_it() {
    let mut d = Driver::new(policy(Bugs::NONE.with(Bug::TrustAnyProxyHeader)), ip(OUTSIDE));
    d.feed(format!("XCLIENT ADDR={LAN}\r\n").as_bytes());
    d.feed(RELAY);
    let (_, verdict) = d.finish();
    assert!(
        verdict
            .violations
            .iter()
            .any(|v| v.to_string().contains("untrusted")),
        "{:?}",
        verdict.violations
    );
}

/// After a PROXY header every byte is the client's: an XCLIENT in them is
/// the client naming itself, refused though the socket is the trusted
/// proxy (the simulation's header seeds found a client behind the proxy
/// relaying this way). With `trust-any-proxy-header` the server takes it
/// and the oracle, which does not, reports the outsider relaying.
#[test]
fn xclient_after_a_proxy_header_is_the_clients_and_refused() {
    let mut d = Driver::proxied(policy(Bugs::NONE), ip(OUTSIDE), ip(PROXY));
    d.feed(b"EHLO x\r\n");
    assert!(!text(&d).contains("XCLIENT"), "offered: {}", text(&d));
    d.feed(format!("XCLIENT ADDR={LAN}\r\n").as_bytes());
    assert!(
        text(&d).ends_with("550 5.7.0 Error: insufficient authorization\r\n"),
        "{}",
        text(&d)
    );
    assert_eq!(
        d.session.peer(),
        Peer {
            ip: ip(OUTSIDE),
            via: Some(ip(PROXY))
        }
    );
    d.feed(RELAY);
    let (run, verdict) = d.finish();
    assert!(!String::from_utf8_lossy(&run.sent).contains("250 2.1.5"));
    assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);

    let mut d = Driver::proxied(
        policy(Bugs::NONE.with(Bug::TrustAnyProxyHeader)),
        ip(OUTSIDE),
        ip(PROXY),
    );
    d.feed(format!("XCLIENT ADDR={LAN}\r\n").as_bytes());
    d.feed(RELAY);
    let (run, verdict) = d.finish();
    assert!(String::from_utf8_lossy(&run.sent).contains("250 2.1.5"));
    assert!(
        verdict
            .violations
            .iter()
            .any(|v| v.to_string().contains("untrusted")),
        "{:?}",
        verdict.violations
    );
}

#[test]
fn xclient_is_refused_when_off_in_a_transaction_and_with_bad_attributes() {
    let off =
        Arc::new(Policy::new(Config::from_toml(&CONFIG.replace("xclient = true", "")).unwrap()).unwrap());
    let mut d = Driver::new(off, ip(PROXY));
    d.feed(format!("XCLIENT ADDR={LAN}\r\n").as_bytes());
    assert!(text(&d).ends_with("550 5.7.0 Error: insufficient authorization\r\n"));
    let mut d = Driver::new(policy(Bugs::NONE), ip(PROXY));
    d.feed(b"XCLIENT ADDR=not-an-ip\r\nXCLIENT LOGIN=carol\r\nXCLIENT\r\n");
    assert_eq!(text(&d).matches("501 5.5.4").count(), 3, "{}", text(&d));
    d.feed(b"EHLO p\r\nMAIL FROM:<>\r\nXCLIENT ADDR=192.168.1.9\r\n");
    assert!(text(&d).ends_with("503 5.5.1 Error: XCLIENT not allowed during a mail transaction\r\n"));
    assert_eq!(d.session.peer(), Peer::direct(ip(PROXY)));
    let mut d = Driver::new(policy(Bugs::NONE), ip(PROXY));
    d.feed(b"XCLIENT ADDR=IPV6:2001:db8::1\r\n");
    assert_eq!(d.session.peer().ip, ip("2001:db8::1"));
}

#[test]
fn a_proxy_header_reaching_the_session_is_refused_and_closes() {
    let v1 = proxy::encode_v1(
        "192.168.1.10:4000".parse().unwrap(),
        "10.0.0.1:25".parse().unwrap(),
    );
    let v2 = proxy::encode_v2(
        "192.168.1.10:4000".parse().unwrap(),
        "10.0.0.1:25".parse().unwrap(),
        false,
    );
    for header in [&v1, &v2] {
        let mut d = Driver::new(policy(Bugs::NONE), ip(OUTSIDE));
        let mut input = header.clone();
        input.extend_from_slice(RELAY);
        d.feed(&input);
        assert!(
            text(&d).ends_with(&format!(
                "554 5.7.0 Error: PROXY protocol header not accepted from {OUTSIDE}\r\n"
            )),
            "{}",
            text(&d)
        );
        assert!(d.run.closed);
        assert_eq!(d.session.peer(), Peer::direct(ip(OUTSIDE)));

        let mut d = Driver::new(policy(Bugs::NONE), ip(PROXY));
        d.feed(b"EHLO x\r\n");
        d.feed(header);
        assert!(
            text(&d).ends_with("554 5.7.0 Error: PROXY protocol header after the first byte of SMTP\r\n"),
            "{}",
            text(&d)
        );
        assert!(d.run.closed);
    }
}

#[test]
fn a_header_is_believed_only_from_a_trusted_proxy() {
    let mut d = Driver::proxied(policy(Bugs::NONE), ip(LAN), ip(PROXY));
    d.feed(RELAY);
    assert!(text(&d).contains("250 2.1.5"), "{}", text(&d));
    let (_, verdict) = d.finish();
    assert!(verdict.violations.is_empty());

    // From elsewhere the header's client is not taken: the session is the
    // socket's own, and an outsider does not relay.
    let mut d = Driver::proxied(policy(Bugs::NONE), ip(LAN), ip(OUTSIDE));
    assert_eq!(d.session.peer(), Peer::direct(ip(OUTSIDE)));
    d.feed(RELAY);
    assert!(!text(&d).contains("250 2.1.5"), "{}", text(&d));

    // With the bug the node would believe it, and the oracle, which
    // reads proxy.trusted itself, sees an outsider relaying.
    let mut d = Driver::proxied(
        policy(Bugs::NONE.with(Bug::TrustAnyProxyHeader)),
        ip(LAN),
        ip(OUTSIDE),
    );
    d.feed(RELAY);
    let (_, verdict) = d.finish();
    assert!(!verdict.violations.is_empty());
}

#[test]
fn front_and_accept_follow_the_listener_mode() {
    let p = policy(Bugs::NONE);
    assert_eq!(proxy::front(&p, ip(PROXY)), Front::ExpectHeader);
    assert_eq!(proxy::front(&p, ip(OUTSIDE)), Front::Direct);
    let required = Policy::new(Config::from_toml(&CONFIG.replace("optional", "required")).unwrap()).unwrap();
    assert!(matches!(proxy::front(&required, ip(OUTSIDE)), Front::Refuse(r) if r.starts_with(b"554 5.7.0")));
    let off = Policy::new(Config::from_toml(&CONFIG.replace("header = \"optional\"", "")).unwrap()).unwrap();
    assert_eq!(proxy::front(&off, ip(PROXY)), Front::Direct);

    let src = "192.168.1.10:4000".parse().unwrap();
    let dst = "10.0.0.1:25".parse().unwrap();
    let ok = proxy::accept(
        &p,
        ip(PROXY),
        Ok(ProxyHeader::Proxied {
            version: 2,
            source: src,
            destination: dst,
        }),
    );
    assert_eq!(
        ok,
        Ok(Peer {
            ip: ip(LAN),
            via: Some(ip(PROXY))
        })
    );
    for bad in [
        Ok(ProxyHeader::Local { version: 2 }),
        Err(ProxyError::NotAHeader),
        Err(ProxyError::Malformed("x".into())),
    ] {
        let r = proxy::accept(&p, ip(PROXY), bad).unwrap_err();
        assert!(
            r.starts_with(b"554 5.5.0 mail.example.com Error: "),
            "{}",
            String::from_utf8_lossy(&r)
        );
    }
}

mod splits {
    use proptest::prelude::*;
    use relayguard_core::check::buggify::Bugs;
    use relayguard_core::check::drive::Driver;
    use relayguard_core::proxy::{encode_v1, encode_v2};

    use super::{OUTSIDE, PROXY, ip, policy};

    /// What the session said and whether it closed, for `input` fed in
    /// pieces cut at `cuts`.
    fn outcome(input: &[u8], cuts: &[usize], socket: &str) -> (Vec<u8>, bool) {
        let mut d = Driver::new(policy(Bugs::NONE), ip(socket));
        let mut at = 0;
        for &c in cuts {
            let c = c.min(input.len()).max(at);
            d.feed(&input[at..c]);
            at = c;
        }
        d.feed(&input[at..]);
        let (run, _) = d.finish();
        (run.sent, run.closed)
    }

    proptest! {
        /// A PROXY header reaching the session (from a socket that may not
        /// send one, or after SMTP began) gets the same answer however the
        /// octets were split across reads: a version 2 signature opens
        /// with an empty line, and a read that ended inside it was answered
        /// as one.
        #[test]
        fn a_header_gets_one_answer_however_it_is_split(
            before in prop::sample::select(vec!["", "EHLO x\r\n", "\r\n", "NOOP\r\n\r\n", "\r\n\r\n"]),
            v2 in any::<bool>(),
            from_proxy in any::<bool>(),
            mut cuts in prop::collection::vec(0usize..80, 0..6),
        ) {
            let src = "203.0.113.7:4000".parse().unwrap();
            let dst = "192.0.2.1:25".parse().unwrap();
            let header = if v2 { encode_v2(src, dst, false) } else { encode_v1(src, dst) };
            let mut input = before.as_bytes().to_vec();
            input.extend_from_slice(&header);
            input.extend_from_slice(b"EHLO y\r\nQUIT\r\n");
            cuts.sort_unstable();
            let socket = if from_proxy { PROXY } else { OUTSIDE };
            let whole = outcome(&input, &[], socket);
            let split = outcome(&input, &cuts, socket);
            prop_assert!(
                String::from_utf8_lossy(&whole.0).contains("554 5.7.0"),
                "{}", String::from_utf8_lossy(&whole.0)
            );
            prop_assert_eq!(
                String::from_utf8_lossy(&split.0),
                String::from_utf8_lossy(&whole.0),
                "cut at {:?}", cuts
            );
            prop_assert_eq!(split.1, whole.1);
        }
    }
}
