//! The configuration as the oracle reads it, with its own address and
//! network parsing: sharing the policy's parsers would share their bugs.

use std::net::IpAddr;

use crate::config::Config;

pub(super) fn strip_route(s: &str) -> &str {
    if s.starts_with('@') {
        s.split_once(':').map_or(s, |(_, r)| r)
    } else {
        s
    }
}

pub(super) fn norm_domain(d: &str) -> String {
    let d = d.strip_suffix('.').unwrap_or(d);
    if d.starts_with('[') {
        let inner = d.trim_start_matches('[').trim_end_matches(']');
        let inner = match inner.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("IPv6:") => &inner[5..],
            _ => inner,
        };
        return match inner.parse::<IpAddr>() {
            // An IPv4-mapped IPv6 literal names the IPv4 address, as in the core.
            Ok(ip) => format!("[{}]", ip.to_canonical()),
            Err(_) => d.to_ascii_lowercase(),
        };
    }
    idna::domain_to_ascii(d).unwrap_or_else(|_| d.to_ascii_lowercase())
}

/// The configuration as the oracle reads it: "local", "foreign" and
/// "trusted" as docs/design.md "Local, foreign and trusted" defines them,
/// nothing more.
#[derive(Clone, Debug)]
pub struct ConfigView {
    local: Vec<String>,
    /// `[domains].local` alone: what makes a sender local.
    sender_local: Vec<String>,
    relay_to: Vec<String>,
    lan: Vec<NetRange>,
    require_auth: bool,
    non_local_senders_in_lan: bool,
    outside_lan: bool,
    always_from: Vec<String>,
    relay_users: Vec<String>,
    /// `proxy.trusted`, and whether XCLIENT is on: who may name the client.
    proxies: Vec<NetRange>,
    xclient: bool,
    /// `limits.max_message_size`: a BDAT chunk declared larger is refused,
    /// so the oracle need not keep its octets.
    pub(super) max_message_size: u64,
}

impl ConfigView {
    /// Reads `c` the oracle's way. The insecure settings count only when
    /// `acknowledge_open_relay` lets them load.
    pub fn new(c: &Config) -> ConfigView {
        let mut local: Vec<String> = c.domains.local.iter().map(|d| norm_domain(d)).collect();
        local.push(norm_domain(&c.hostname));
        local.extend(c.own_addresses.iter().map(|a| format!("[{a}]")));
        let ack = c.relay.acknowledge_open_relay;
        ConfigView {
            proxies: c
                .proxy
                .trusted
                .iter()
                .filter_map(|n| NetRange::parse(n))
                .collect(),
            xclient: c.proxy.xclient,
            max_message_size: c.limits.max_message_size as u64,
            sender_local: c.domains.local.iter().map(|d| norm_domain(d)).collect(),
            local,
            relay_to: c.domains.relay_to.iter().map(|d| norm_domain(d)).collect(),
            lan: c.lan.networks.iter().filter_map(|n| NetRange::parse(n)).collect(),
            require_auth: c.relay.require_auth,
            non_local_senders_in_lan: c.relay.non_local_senders_in_lan,
            outside_lan: ack && c.relay.outside_lan,
            always_from: if ack {
                c.relay
                    .always_from
                    .iter()
                    .map(|s| s.to_ascii_lowercase())
                    .collect()
            } else {
                Vec::new()
            },
            relay_users: c
                .auth
                .users
                .iter()
                .filter(|u| u.relay)
                .map(|u| u.name.clone())
                .collect(),
        }
    }

    /// Whether a connection from `socket` may rename its client with
    /// XCLIENT.
    pub fn may_xclient(&self, socket: IpAddr) -> bool {
        self.xclient && self.proxies.iter().any(|n| n.contains(socket))
    }

    /// Whether a connection from `socket` may name its client with a
    /// PROXY protocol header.
    pub fn may_proxy(&self, socket: IpAddr) -> bool {
        self.proxies.iter().any(|n| n.contains(socket))
    }

    fn in_lan(&self, ip: IpAddr) -> bool {
        self.lan.iter().any(|n| n.contains(ip))
    }

    /// The local part (quotes removed) and the domain, if any. A quoted
    /// local part runs to its closing quote; otherwise the last `@` splits.
    fn split(addr: &str) -> (String, Option<String>) {
        let a = strip_route(addr.trim_start_matches('<').trim_end_matches('>'));
        if let Some(rest) = a.strip_prefix('"') {
            let mut local = String::new();
            let mut chars = rest.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            local.push(n);
                        }
                    }
                    '"' => {
                        let after = &rest[i + 1..];
                        return (local, after.strip_prefix('@').map(norm_domain));
                    }
                    c => local.push(c),
                }
            }
            return (local, None);
        }
        match a.rsplit_once('@') {
            Some((l, d)) => (l.to_string(), Some(norm_domain(d))),
            None => (a.to_string(), None),
        }
    }

    fn domain_of(addr: &str) -> Option<String> {
        Self::split(addr).1
    }

    /// Sender-specified routing: `%`, `!` or `@` in the local part, quoted
    /// or not (an unquoted double `@` puts one there too).
    fn is_routed(addr: &str) -> bool {
        Self::split(addr).0.contains(['%', '!', '@'])
    }

    fn is_local_domain(&self, d: &str) -> bool {
        self.local.iter().any(|l| l == d)
    }

    /// Whether a recipient (as written, brackets optional) is a foreign
    /// destination: routed (`%`, `!` or `@` in the local part), unqualified
    /// but not postmaster, or at a domain that is neither local (the
    /// hostname and own address literals included) nor `relay_to`.
    pub fn is_foreign(&self, rcpt: &str) -> bool {
        if Self::is_routed(rcpt) {
            return true;
        }
        match Self::domain_of(rcpt) {
            None => !Self::split(rcpt).0.eq_ignore_ascii_case("postmaster"),
            Some(d) => !self.is_local_domain(&d) && !self.relay_to.contains(&d),
        }
    }

    pub(super) fn why_foreign(&self, rcpt: &str) -> &'static str {
        if Self::is_routed(rcpt) {
            "sender-specified routing"
        } else if Self::domain_of(rcpt).is_none() {
            "unqualified"
        } else {
            "domain neither local nor relay_to"
        }
    }

    /// Whether the client may relay: authenticated as a user with the relay
    /// right, trusted by an acknowledged insecure setting, or in the LAN as
    /// `require_auth` and `non_local_senders_in_lan` allow. `sender` is the
    /// reverse-path as written, empty for `<>`.
    pub fn is_trusted(&self, client: IpAddr, user: Option<&str>, sender: &str) -> bool {
        if user.is_some_and(|u| self.relay_users.iter().any(|r| r == u)) {
            return true;
        }
        if self.outside_lan {
            return true;
        }
        // The sender as the always_from patterns see it: canonical domain
        // (case, trailing dot, IDNA), local part folded.
        let sender_l = match Self::split(sender) {
            (local, Some(d)) => format!("{}@{d}", local.to_ascii_lowercase()),
            (local, None) => local.to_ascii_lowercase(),
        };
        if !sender_l.is_empty() && self.always_from.iter().any(|p| wildcard(p, &sender_l)) {
            return true;
        }
        if self.in_lan(client) && !self.require_auth {
            let sender_local = Self::domain_of(sender).is_some_and(|d| self.sender_local.contains(&d));
            return self.non_local_senders_in_lan || sender_local;
        }
        false
    }

    pub(super) fn why_untrusted(&self, client: IpAddr, user: Option<&str>, sender: &str) -> String {
        let mut why = Vec::new();
        if !self.in_lan(client) {
            why.push("not in the LAN".to_string());
        } else if self.require_auth {
            why.push("the LAN must authenticate".to_string());
        } else {
            why.push("sender not local and non_local_senders_in_lan is off".to_string());
        }
        match user {
            Some(u) => why.push(format!("user {u} has no relay right")),
            None => why.push("not authenticated".to_string()),
        }
        let _ = sender;
        why.join(", ")
    }
}

/// `*` matches any run of characters.
pub(super) fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(p) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else {
            match rest.find(p) {
                Some(at) => rest = &rest[at + p.len()..],
                None => return false,
            }
        }
    }
    true
}

/// A network entry in any of the configuration's forms, read by the oracle
/// itself: CIDR, single address, wildcard octets, last-octet range.
#[derive(Clone, Copy, Debug)]
pub(super) struct NetRange {
    lo: u128,
    hi: u128,
    v6: bool,
}

impl NetRange {
    fn key(ip: IpAddr) -> (u128, bool) {
        match ip {
            IpAddr::V4(a) => (u32::from(a) as u128, false),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => (u32::from(v4) as u128, false),
                None => (u128::from(a), true),
            },
        }
    }

    pub(super) fn contains(&self, ip: IpAddr) -> bool {
        let (k, v6) = Self::key(ip);
        v6 == self.v6 && self.lo <= k && k <= self.hi
    }

    pub(super) fn parse(s: &str) -> Option<NetRange> {
        let s = s.trim();
        if let Some((addr, len)) = s.split_once('/') {
            let ip: IpAddr = addr.parse().ok()?;
            let len: u32 = len.parse().ok()?;
            let (k, v6) = Self::key(ip);
            let bits = if v6 { 128 } else { 32 };
            if len > bits {
                return None;
            }
            let host = match bits - len {
                128 => u128::MAX,
                n => (1u128 << n) - 1,
            };
            let lo = k & !host;
            return Some(NetRange {
                lo,
                hi: lo | host,
                v6,
            });
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            let (k, v6) = Self::key(ip);
            return Some(NetRange { lo: k, hi: k, v6 });
        }
        // IPv4 with `*` octets or an `a-b` range in one octet.
        let octets: Vec<&str> = s.split('.').collect();
        if octets.len() != 4 {
            return None;
        }
        let (mut lo, mut hi) = (0u32, 0u32);
        for o in octets {
            let (a, b) = match o {
                "*" => (0, 255),
                _ => match o.split_once('-') {
                    Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
                    None => {
                        let v: u32 = o.parse().ok()?;
                        (v, v)
                    }
                },
            };
            if a > b || b > 255 {
                return None;
            }
            lo = (lo << 8) | a;
            hi = (hi << 8) | b;
        }
        Some(NetRange {
            lo: lo as u128,
            hi: hi as u128,
            v6: false,
        })
    }
}

/// Whether a client is trusted to relay, by docs/design.md "Trusted clients".
pub fn is_trusted(config: &Config, client: IpAddr, user: Option<&str>, sender: &str) -> bool {
    ConfigView::new(config).is_trusted(client, user, sender)
}

/// Whether a recipient (as written, brackets optional) is a foreign
/// destination, by docs/design.md "Foreign destinations".
pub fn is_foreign(config: &Config, rcpt: &str) -> bool {
    ConfigView::new(config).is_foreign(rcpt)
}
