//! Who the client is, when a proxy says so: Postfix's XCLIENT command, and
//! the refusal of a PROXY protocol header the driver did not take.
//!
//! A proxy in front of the relay makes every client arrive from the
//! proxy's address; it names the real client with XCLIENT (or a PROXY
//! header, which the driver reads before the session starts). Believing
//! that name from anyone is an open relay, so both are honoured only from a
//! connection whose socket peer is in `proxy.trusted`
//! ([`Policy::is_trusted_proxy`](crate::Policy::is_trusted_proxy)).

use std::net::IpAddr;

use super::{Peer, Session};
use crate::check::Bug;
use crate::proxy::V2_SIGNATURE;
use crate::reply::Enhanced;

/// The attributes of Postfix's XCLIENT that are taken and ignored: only
/// `ADDR` changes what the policy sees.
const IGNORED: [&str; 6] = ["NAME", "PORT", "PROTO", "HELO", "DESTADDR", "DESTPORT"];

impl Session {
    /// Whether this connection may use XCLIENT: `proxy.xclient` is on, the
    /// socket's peer is a trusted proxy, and no PROXY header named the
    /// client (after a header the bytes are the client's: a client behind
    /// HAProxy would otherwise name itself). The injected bug
    /// `trust-any-proxy-header` believes anyone's.
    fn xclient_allowed(&self) -> bool {
        if self.policy.bugs().has(Bug::TrustAnyProxyHeader) {
            // BUG trust-any-proxy-header: whoever says who the client is, is believed.
            return true;
        }
        self.policy.config().proxy.xclient
            && !self.header_named
            && self.policy.is_trusted_proxy(self.peer.socket())
    }

    /// The EHLO keyword, offered only where XCLIENT would be honoured.
    pub(super) fn advertise_xclient(&self, text: &mut String) {
        if self.xclient_allowed() {
            text.push_str("250-XCLIENT ADDR NAME PORT PROTO HELO DESTADDR DESTPORT\r\n");
        }
    }

    /// Whether held input at a line start is a version 2 PROXY header's
    /// signature: the driver did not take it (an untrusted address, or
    /// after SMTP began), and the session refuses it before its CRLFs are
    /// read as empty command lines. Refuses and closes when it is.
    pub(super) fn refuse_binary_proxy_header(&mut self, held: &[u8]) -> bool {
        if !held.starts_with(&V2_SIGNATURE) {
            return false;
        }
        let first = self.lines == 0;
        self.refuse_proxy_header(first);
        true
    }

    /// Serves the command lines that are about the proxy: a PROXY version 1
    /// line and XCLIENT. True when `line` was one of them and is done.
    pub(super) fn proxy_command(&mut self, line: &[u8]) -> bool {
        if line.starts_with(b"PROXY ") {
            let first = self.lines == 1;
            self.refuse_proxy_header(first);
            return true;
        }
        let verb = line.split(|&b| b == b' ').next().unwrap_or(line);
        if !verb.eq_ignore_ascii_case(b"XCLIENT") {
            return false;
        }
        let args = std::str::from_utf8(&line[verb.len()..]).unwrap_or("\u{fffd}");
        self.xclient(args.trim());
        true
    }

    /// A PROXY header that reached the session: the first line from an
    /// address that may not send one, or a header after SMTP began. Either
    /// way the connection is refused and closed; the peer stays as it is.
    fn refuse_proxy_header(&mut self, first: bool) {
        let text = if !first {
            "Error: PROXY protocol header after the first byte of SMTP".to_string()
        } else {
            format!(
                "Error: PROXY protocol header not accepted from {}",
                self.peer.socket()
            )
        };
        self.reply(554, Enhanced(5, 7, 0), &text);
        self.close();
    }

    /// `XCLIENT attribute=value ...`: from a trusted proxy, `ADDR` becomes
    /// the client's address, the session starts over (a new greeting, as
    /// Postfix does) and every later decision is about that address; from
    /// anyone else it is refused and nothing changes.
    fn xclient(&mut self, args: &str) {
        if !self.xclient_allowed() {
            return self.error(550, Enhanced(5, 7, 0), "Error: insufficient authorization");
        }
        if self.tx.is_some() {
            return self.error(
                503,
                Enhanced(5, 5, 1),
                "Error: XCLIENT not allowed during a mail transaction",
            );
        }
        let mut addr = None;
        for attr in args.split(' ').filter(|a| !a.is_empty()) {
            let Some((name, value)) = attr.split_once('=') else {
                return self.error(501, Enhanced(5, 5, 4), "Syntax: XCLIENT attribute=value ...");
            };
            if name.eq_ignore_ascii_case("ADDR") {
                match parse_addr(value) {
                    Ok(a) => addr = a.or(addr),
                    Err(why) => return self.error(501, Enhanced(5, 5, 4), &format!("Syntax: {why}")),
                }
            } else if !IGNORED.iter().any(|i| name.eq_ignore_ascii_case(i)) {
                return self.error(
                    501,
                    Enhanced(5, 5, 4),
                    &format!("Error: XCLIENT attribute {name} is not honoured"),
                );
            }
        }
        if args.is_empty() {
            return self.error(501, Enhanced(5, 5, 4), "Syntax: XCLIENT attribute=value ...");
        }
        if let Some(ip) = addr {
            self.peer = Peer {
                ip,
                via: Some(self.peer.socket()),
            };
        }
        self.helo = None;
        self.esmtp = false;
        self.user = None;
        self.tx = None;
        match self.policy.connect(self.peer.ip) {
            Ok(()) => {
                let greeting = format!("220 {} ESMTP relayguard\r\n", self.policy.hostname());
                self.send(greeting.as_bytes());
            }
            Err(refusal) => {
                self.send(&refusal.reply.to_bytes());
                self.refused = true;
            }
        }
    }
}

/// An `ADDR` value: an IPv4 address, `IPV6:` and an IPv6 address, or
/// `[UNAVAILABLE]`/`[TEMPUNAVAIL]` (`None`: the address stays).
fn parse_addr(value: &str) -> Result<Option<IpAddr>, String> {
    if value.eq_ignore_ascii_case("[UNAVAILABLE]") || value.eq_ignore_ascii_case("[TEMPUNAVAIL]") {
        return Ok(None);
    }
    let v6 = value.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("IPV6:"));
    let parsed = if v6 {
        value[5..].parse::<std::net::Ipv6Addr>().map(IpAddr::V6)
    } else {
        value.parse::<std::net::Ipv4Addr>().map(IpAddr::V4)
    };
    parsed
        .map(Some)
        .map_err(|_| format!("XCLIENT ADDR={value} is not an IPv4 address or IPV6:address"))
}
