//! Client address lists (LAN, access list, black and white lists) in the
//! forms Mailtraq's settings take: CIDR (v4 and v6), single addresses,
//! wildcard octets (`192.168.*.*`) and octet ranges (`10.2.3.10-20`).
//!
//! Entries compile into sorted, merged ranges, so a lookup is a binary search
//! whatever the size of the list and whatever the order it was written in.

use std::net::IpAddr;

/// One address range; IPv4 and IPv6 live in separate key spaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Range {
    v6: bool,
    lo: u128,
    hi: u128,
}

fn key(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u32::from(a) as u128),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => (false, u32::from(v4) as u128),
            None => (true, u128::from(a)),
        },
    }
}

/// Parses one entry. The error says what the entry should look like.
fn parse_entry(s: &str) -> Result<Range, String> {
    let bad = || {
        format!(
            "{s:?} is not a network: write CIDR (192.168.1.0/24), an address, wildcard octets (10.1.*.*) or a range (10.2.3.10-20)"
        )
    };
    let s = s.trim();
    if let Some((addr, len)) = s.split_once('/') {
        let ip: IpAddr = addr.parse().map_err(|_| bad())?;
        let len: u32 = len.parse().map_err(|_| bad())?;
        let (v6, k) = key(ip);
        let bits = if ip.is_ipv6() && v6 {
            128
        } else if ip.is_ipv6() {
            return Err(bad());
        } else {
            32
        };
        if len > bits {
            return Err(bad());
        }
        let host = match bits - len {
            128 => u128::MAX,
            n => (1u128 << n) - 1,
        };
        let lo = k & !host;
        return Ok(Range {
            v6,
            lo,
            hi: lo | host,
        });
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        let (v6, k) = key(ip);
        return Ok(Range { v6, lo: k, hi: k });
    }
    let octets: Vec<&str> = s.split('.').collect();
    if octets.len() != 4 {
        return Err(bad());
    }
    let (mut lo, mut hi) = (0u128, 0u128);
    let mut ranged = false;
    for o in octets {
        let (a, b): (u128, u128) = if o == "*" {
            (0, 255)
        } else if let Some((a, b)) = o.split_once('-') {
            (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?)
        } else {
            let v = o.parse().map_err(|_| bad())?;
            (v, v)
        };
        if a > b || b > 255 {
            return Err(bad());
        }
        // After a wildcard or range, only wildcards keep the set contiguous.
        if ranged && (a, b) != (0, 255) {
            return Err(bad());
        }
        ranged |= a != b;
        lo = lo << 8 | a;
        hi = hi << 8 | b;
    }
    Ok(Range { v6: false, lo, hi })
}

/// A compiled list of networks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetList {
    ranges: Vec<Range>,
}

impl NetList {
    /// Compiles entries; the error names the first bad one.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<NetList, (String, String)> {
        let mut ranges = Vec::new();
        for e in entries {
            ranges.push(parse_entry(e).map_err(|why| (e.to_string(), why))?);
        }
        ranges.sort();
        let mut merged: Vec<Range> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(m) if m.v6 == r.v6 && r.lo <= m.hi.saturating_add(1) => m.hi = m.hi.max(r.hi),
                _ => merged.push(r),
            }
        }
        Ok(NetList { ranges: merged })
    }

    /// Whether `s` is a network entry (as opposed to an address pattern).
    pub fn is_entry(s: &str) -> bool {
        parse_entry(s).is_ok()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (v6, k) = key(ip);
        let i = self.ranges.partition_point(|r| (r.v6, r.lo) <= (v6, k));
        i > 0 && {
            let r = self.ranges[i - 1];
            r.v6 == v6 && r.lo <= k && k <= r.hi
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// True if the list covers every IPv4 or every IPv6 address.
    pub fn covers_everybody(&self) -> bool {
        self.ranges
            .iter()
            .any(|r| r.lo == 0 && r.hi == if r.v6 { u128::MAX } else { u32::MAX as u128 })
    }

    /// Whether some address is in both lists.
    pub fn overlaps(&self, other: &NetList) -> bool {
        self.ranges.iter().any(|a| {
            other
                .ranges
                .iter()
                .any(|b| a.v6 == b.v6 && a.lo <= b.hi && b.lo <= a.hi)
        })
    }

    /// The size of the widest IPv4 range, as a prefix length (32 = one host).
    pub fn widest_v4_prefix(&self) -> Option<u32> {
        self.ranges
            .iter()
            .filter(|r| !r.v6)
            .map(|r| 32 - (r.hi - r.lo + 1).ilog2().min(32))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(e: &[&str]) -> NetList {
        NetList::parse(e.iter().copied()).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A prefix as long as the address is one host; an IPv4-mapped IPv6
    /// network is refused (its prefix counts IPv6 bits, the list keeps the
    /// IPv4 address).
    #[test]
    fn whole_length_prefixes_and_mapped_networks() {
        let l = list(&["10.0.0.1/32", "2001:db8::1/128"]);
        assert!(l.contains(ip("10.0.0.1")) && !l.contains(ip("10.0.0.2")) && !l.contains(ip("10.0.0.0")));
        assert!(l.contains(ip("2001:db8::1")) && !l.contains(ip("2001:db8::2")));
        assert!(NetList::parse(["::ffff:10.0.0.0/104"]).is_err());
        assert!(NetList::parse(["10.0.0.0/33"]).is_err());
    }

    /// Only a list with a range of every address covers everybody; a
    /// range that merely starts at the first address or ends at the last
    /// does not.
    #[test]
    fn everybody_is_every_address() {
        assert!(list(&["0.0.0.0/0"]).covers_everybody());
        assert!(list(&["::/0"]).covers_everybody());
        assert!(!list(&["0.0.0.0/8"]).covers_everybody());
        assert!(!list(&["255.0.0.0/8"]).covers_everybody());
        assert!(!list(&["::/1"]).covers_everybody());
    }

    /// What the configuration asks before it takes a list entry for a
    /// network rather than an address pattern.
    #[test]
    fn entries_and_emptiness() {
        assert!(NetList::is_entry("10.0.0.0/8") && NetList::is_entry("10.1.*.*") && NetList::is_entry("::1"));
        assert!(!NetList::is_entry("example.com") && !NetList::is_entry("*@example.com"));
        assert!(list(&[]).is_empty());
        assert!(!list(&["10.0.0.0/8"]).is_empty());
    }

    #[test]
    fn every_form() {
        let l = list(&[
            "192.168.1.0/24",
            "10.1.*.*",
            "172.16.0.5",
            "10.2.3.10-20",
            "2001:db8::/32",
        ]);
        for yes in [
            "192.168.1.77",
            "10.1.200.3",
            "172.16.0.5",
            "10.2.3.10",
            "10.2.3.20",
            "2001:db8::9",
            "::ffff:192.168.1.1",
        ] {
            assert!(l.contains(ip(yes)), "{yes}");
        }
        for no in [
            "192.168.2.1",
            "10.2.0.1",
            "172.16.0.6",
            "10.2.3.9",
            "10.2.3.21",
            "2001:db9::1",
            "::1",
        ] {
            assert!(!l.contains(ip(no)), "{no}");
        }
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in [
            "192.168.1.0/33",
            "10.1.*",
            "10.*.3.4",
            "10.2.3.20-10",
            "300.1.1.1",
            "lan",
            "::/129",
            "",
        ] {
            let e = NetList::parse([bad]).unwrap_err();
            assert_eq!(e.0, bad);
        }
    }

    #[test]
    fn everybody_and_width() {
        assert!(list(&["*.*.*.*"]).covers_everybody());
        assert!(list(&["0.0.0.0/0"]).covers_everybody());
        assert!(list(&["::/0"]).covers_everybody());
        assert!(list(&["0.0.0.0/1", "128.0.0.0/1"]).covers_everybody());
        assert!(!list(&["10.0.0.0/8"]).covers_everybody());
        assert_eq!(
            list(&["10.0.0.0/8", "192.168.1.0/24"]).widest_v4_prefix(),
            Some(8)
        );
    }

    #[test]
    fn order_does_not_matter() {
        let a = list(&["10.0.0.0/24", "10.0.1.0/24", "192.168.0.1"]);
        let b = list(&["192.168.0.1", "10.0.1.0/24", "10.0.0.0/24"]);
        assert_eq!(a, b);
    }
}
