//! The PROXY protocol header (HAProxy's specification, versions 1 and 2):
//! the line or block a proxy sends before the client's first byte, naming
//! the client it stands for.
//!
//! Sans-IO like the rest of the core: [`parse`] looks at the bytes received
//! so far and says "need more", "here is the header and its length", or why
//! it is not one. The caller decides whom to believe; this module only reads.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The twelve octets that open a version 2 header. They read as two empty
/// lines, a NUL line and `QUIT` to an SMTP server that does not expect them.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The longest version 1 line, CRLF included (the specification's 107).
pub const V1_MAX: usize = 107;

/// The address block of a version 2 header beyond which it is refused:
/// the addresses of TCP over IPv6 take 36 octets; the rest would be TLVs,
/// which relayguard does not read.
pub const V2_MAX_BLOCK: usize = 1024;

/// A header read whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyHeader {
    /// The proxy relays a TCP connection from `source` to `destination`.
    Proxied {
        /// 1 or 2.
        version: u8,
        /// The client, as the proxy saw it.
        source: SocketAddr,
        /// The address the client connected to.
        destination: SocketAddr,
    },
    /// Version 2 `LOCAL` or version 1 `UNKNOWN`: the proxy speaks for
    /// itself (a health check) and names no client.
    Local {
        /// 1 or 2.
        version: u8,
    },
}

/// Why the bytes are not a header relayguard accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyError {
    /// The bytes do not start like a header at all (plain SMTP).
    NotAHeader,
    /// They start like one but break the specification.
    Malformed(String),
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::NotAHeader => f.write_str("not a PROXY protocol header"),
            ProxyError::Malformed(why) => write!(f, "malformed PROXY protocol header: {why}"),
        }
    }
}

impl std::error::Error for ProxyError {}

/// Reads a header at the start of `bytes`: `Ok(None)` while what is there
/// could still become one (the caller reads more, within its own deadline),
/// `Ok(Some((header, length)))` once it is whole, an error otherwise.
/// Never reads beyond the header: the SMTP bytes after it are the caller's.
pub fn parse(bytes: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    if starts_like(bytes, &V2_SIGNATURE) {
        return if bytes.len() < V2_SIGNATURE.len() {
            Ok(None)
        } else {
            parse_v2(bytes)
        };
    }
    if starts_like(bytes, b"PROXY ") {
        return if bytes.len() < 6 {
            Ok(None)
        } else {
            parse_v1(bytes)
        };
    }
    Err(ProxyError::NotAHeader)
}

/// Whether `bytes` begin as a PROXY header would (either version), even if
/// only its first octets have arrived: what a session that must not take
/// one looks for in its first input.
pub fn looks_like_header(bytes: &[u8]) -> bool {
    !bytes.is_empty() && (starts_like(bytes, &V2_SIGNATURE) || starts_like(bytes, b"PROXY "))
}

/// `bytes` and `prefix` agree on their common length.
fn starts_like(bytes: &[u8], prefix: &[u8]) -> bool {
    let n = bytes.len().min(prefix.len());
    bytes[..n] == prefix[..n]
}

fn bad(why: impl Into<String>) -> ProxyError {
    ProxyError::Malformed(why.into())
}

fn parse_v1(bytes: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let window = &bytes[..bytes.len().min(V1_MAX)];
    let Some(lf) = memchr::memchr(b'\n', window) else {
        return if bytes.len() >= V1_MAX {
            Err(bad(format!("version 1 line longer than {V1_MAX} octets")))
        } else {
            Ok(None)
        };
    };
    if lf == 0 || window[lf - 1] != b'\r' {
        return Err(bad("version 1 line does not end with CRLF"));
    }
    let line = std::str::from_utf8(&window[..lf - 1]).map_err(|_| bad("version 1 line is not ASCII"))?;
    let fields: Vec<&str> = line.split(' ').collect();
    let header = match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => ProxyHeader::Local { version: 1 },
        ["PROXY", family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let v6 = *family == "TCP6";
            let ip = |s: &str| -> Result<IpAddr, ProxyError> {
                let ip = if v6 {
                    s.parse::<Ipv6Addr>().map(IpAddr::V6)
                } else {
                    s.parse::<Ipv4Addr>().map(IpAddr::V4)
                };
                ip.map_err(|_| bad(format!("{s:?} is not an {family} address")))
            };
            let port = |s: &str| -> Result<u16, ProxyError> {
                // The specification writes ports without leading zeros.
                if s.is_empty()
                    || (s.len() > 1 && s.starts_with('0'))
                    || !s.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(bad(format!("{s:?} is not a port")));
                }
                s.parse().map_err(|_| bad(format!("{s:?} is not a port")))
            };
            ProxyHeader::Proxied {
                version: 1,
                source: SocketAddr::new(ip(src)?, port(sport)?),
                destination: SocketAddr::new(ip(dst)?, port(dport)?),
            }
        }
        ["PROXY", family, ..] if !matches!(*family, "TCP4" | "TCP6") => {
            return Err(bad(format!("unknown version 1 protocol {family:?}")));
        }
        _ => return Err(bad("version 1 line needs protocol, two addresses and two ports")),
    };
    Ok(Some((header, lf + 1)))
}

fn parse_v2(bytes: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    if bytes.len() < 16 {
        // Version and command are checked as soon as they are here.
        if let Some(&vc) = bytes.get(12) {
            check_version_command(vc)?;
        }
        return Ok(None);
    }
    let command = check_version_command(bytes[12])?;
    let family = bytes[13];
    let block = u16::from_be_bytes([bytes[14], bytes[15]]) as usize;
    if block > V2_MAX_BLOCK {
        return Err(bad(format!(
            "version 2 address block of {block} octets (at most {V2_MAX_BLOCK})"
        )));
    }
    let total = 16 + block;
    if bytes.len() < total {
        return Ok(None);
    }
    let body = &bytes[16..total];
    if command == 0 {
        // LOCAL: the addresses, if any, are to be ignored.
        return Ok(Some((ProxyHeader::Local { version: 2 }, total)));
    }
    let need = |n: usize| {
        if block < n {
            Err(bad(format!(
                "version 2 address block of {block} octets, {n} needed"
            )))
        } else {
            Ok(())
        }
    };
    let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
    let (source, destination) = match family {
        // TCP over IPv4.
        0x11 => {
            need(12)?;
            let src = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let dst = Ipv4Addr::new(body[4], body[5], body[6], body[7]);
            (
                SocketAddr::new(src.into(), port(8)),
                SocketAddr::new(dst.into(), port(10)),
            )
        }
        // TCP over IPv6.
        0x21 => {
            need(36)?;
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&body[..16]);
            dst.copy_from_slice(&body[16..32]);
            (
                SocketAddr::new(Ipv6Addr::from(src).into(), port(32)),
                SocketAddr::new(Ipv6Addr::from(dst).into(), port(34)),
            )
        }
        0x00 => return Err(bad("version 2 PROXY command with an unspecified address family")),
        other => {
            return Err(bad(format!(
                "version 2 address family and protocol 0x{other:02x}: only TCP over IPv4 or IPv6 carries SMTP"
            )));
        }
    };
    Ok(Some((
        ProxyHeader::Proxied {
            version: 2,
            source,
            destination,
        },
        total,
    )))
}

/// The command of a version 2 header (0 LOCAL, 1 PROXY), if its high
/// nibble says version 2.
fn check_version_command(vc: u8) -> Result<u8, ProxyError> {
    if vc >> 4 != 2 {
        return Err(bad(format!("version 2 signature with version {}", vc >> 4)));
    }
    match vc & 0x0f {
        c @ (0 | 1) => Ok(c),
        c => Err(bad(format!(
            "version 2 command {c} (only LOCAL 0 and PROXY 1 exist)"
        ))),
    }
}

/// A version 1 header for `source` and `destination`: for tests, the
/// simulation's proxy and the probe.
pub fn encode_v1(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        source.ip(),
        destination.ip(),
        source.port(),
        destination.port()
    )
    .into_bytes()
}

/// A version 2 `PROXY` header for `source` and `destination` (both of one
/// family), or a `LOCAL` one when `local`.
pub fn encode_v2(source: SocketAddr, destination: SocketAddr, local: bool) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(if local { 0x20 } else { 0x21 });
    let mut block = Vec::new();
    match (source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.push(0x11);
            block.extend_from_slice(&s.octets());
            block.extend_from_slice(&d.octets());
        }
        (s, d) => {
            out.push(0x21);
            block.extend_from_slice(&to_v6(s).octets());
            block.extend_from_slice(&to_v6(d).octets());
        }
    }
    block.extend_from_slice(&source.port().to_be_bytes());
    block.extend_from_slice(&destination.port().to_be_bytes());
    out.extend_from_slice(&(block.len() as u16).to_be_bytes());
    out.extend_from_slice(&block);
    out
}

fn to_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

#[cfg(test)]
mod tests;

/// What the driver does with a new connection before the session starts,
/// by `[proxy]` and the socket's peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Front {
    /// Serve the socket's peer as the client; a header it sends is the
    /// session's to refuse.
    Direct,
    /// Read a header first (within the command timeout), then call
    /// [`accept`] on what it says.
    ExpectHeader,
    /// Send this reply and close: `header = "required"` and the peer is no
    /// trusted proxy.
    Refuse(Vec<u8>),
}

/// The driver's first decision on a connection from `socket`.
pub fn front(policy: &crate::Policy, socket: IpAddr) -> Front {
    use crate::config::Header;
    let header = policy.config().proxy.header;
    match header {
        Header::Off => Front::Direct,
        _ if policy.is_trusted_proxy(socket) => Front::ExpectHeader,
        Header::Optional => Front::Direct,
        Header::Required => Front::Refuse(
            format!(
                "554 5.7.0 {} Error: connections only through a trusted proxy\r\n",
                policy.hostname()
            )
            .into_bytes(),
        ),
    }
}

/// The client a trusted proxy's header names, or the reply that refuses
/// it before the connection is closed: a `LOCAL` (or `UNKNOWN`) header
/// names no client, and relayguard serves no connection as the proxy
/// itself.
pub fn accept(
    policy: &crate::Policy,
    socket: IpAddr,
    read: Result<ProxyHeader, ProxyError>,
) -> Result<crate::Peer, Vec<u8>> {
    match read {
        Ok(ProxyHeader::Proxied { source, .. }) => Ok(crate::Peer {
            ip: source.ip().to_canonical(),
            via: Some(socket),
        }),
        Ok(ProxyHeader::Local { version }) => Err(refusal(
            policy,
            &format!("PROXY protocol version {version} header names no client (LOCAL or UNKNOWN)"),
        )),
        Err(ProxyError::NotAHeader) => Err(refusal(policy, "a PROXY protocol header is required first")),
        Err(e) => Err(refusal(policy, &e.to_string())),
    }
}

/// The reply that refuses a trusted proxy's connection whose header is
/// missing, malformed, truncated or `LOCAL`, saying why.
pub fn refusal(policy: &crate::Policy, why: &str) -> Vec<u8> {
    format!("554 5.5.0 {} Error: {why}\r\n", policy.hostname()).into_bytes()
}
