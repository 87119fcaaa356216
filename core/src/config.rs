//! The TOML configuration (docs/configuration.md): every key optional,
//! the defaults closed and safe, unknown keys refused with line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The relay's configuration, as written in TOML. The default (an empty
/// file) is closed: no local domain but the host name, no LAN, no users,
/// relaying for nobody.
///
/// Serde checks only shape; [`Config::from_toml`] and [`Policy::new`]
/// also run [`Config::validate`], which refuses the settings that make an
/// open relay unless `relay.acknowledge_open_relay` says they are meant.
///
/// [`Policy::new`]: crate::Policy::new
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// This server's name, for the greeting and the EHLO reply. A local
    /// domain for recipients and the HELO check, not for the local-sender
    /// rules. Default `localhost`.
    pub hostname: String,
    /// This server's addresses: `user@[IP]` at one of them is local for
    /// recipients, as the hostname is. Without them an address literal of
    /// this server counts as foreign.
    pub own_addresses: Vec<IpAddr>,
    /// The domains mail is received for.
    pub domains: Domains,
    /// The clients inside, which may relay.
    pub lan: Lan,
    /// Which clients may connect at all.
    pub access: Access,
    /// Who may relay, and the settings that would make an open relay.
    pub relay: Relay,
    /// SMTP AUTH users.
    pub auth: Auth,
    /// Black and white lists, and the checks on local names from outside.
    pub lists: Lists,
    /// Per-session limits.
    pub limits: Limits,
    /// The proxies whose word on the client's address is believed.
    pub proxy: Proxy,
    /// The certificate for STARTTLS (RFC 3207).
    pub tls: Tls,
    /// The next hop for outgoing mail: recipient domain (`"*"` for every
    /// other) to `"IP:port"`. Used by the real server's delivery; the
    /// policy never reads it.
    pub routes: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            hostname: "localhost".into(),
            own_addresses: Vec::new(),
            domains: Domains::default(),
            lan: Lan::default(),
            access: Access::default(),
            relay: Relay::default(),
            auth: Auth::default(),
            lists: Lists::default(),
            limits: Limits::default(),
            proxy: Proxy::default(),
            tls: Tls::default(),
            routes: BTreeMap::new(),
        }
    }
}

/// `[domains]`: where mail is delivered here, and where it is sent on.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Domains {
    /// The domains this server is the final destination for, from anyone
    /// (Mailtraq's Domain Name and its aliases). They share one mailbox
    /// namespace, filed under the first. A sender in one of them is a
    /// "local sender".
    pub local: Vec<String>,
    /// Known recipients; `None` means any local part of a local domain.
    pub mailboxes: Option<Vec<String>>,
    /// Domains this server is a backup MX for: mail to them is accepted
    /// from anyone and sent on.
    pub relay_to: Vec<String>,
    /// Mailbox folders `relayguard serve` may create in its Maildir tree;
    /// mail for a new mailbox beyond it is not delivered (permanent
    /// failure). Without a `mailboxes` list any local part is accepted, so
    /// this is what bounds the folders outside clients can make. 0: only
    /// folders that already exist. Default 1000.
    pub max_mailboxes: usize,
}

impl Default for Domains {
    fn default() -> Domains {
        Domains {
            local: Vec::new(),
            mailboxes: None,
            relay_to: Vec::new(),
            max_mailboxes: 1000,
        }
    }
}

/// `[lan]`: the clients inside. They may relay (as [`Relay`] allows), and
/// the checks on local names from outside do not apply to them.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Lan {
    /// CIDR (v4 or v6), single addresses, wildcard octets (`192.168.*.*`)
    /// or octet ranges (`10.2.3.10-20`).
    pub networks: Vec<String>,
}

/// `access.allow`: which clients may connect. One refused hears `554 5.7.1`
/// as its greeting, and only QUIT is served.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Allow {
    /// Every client (the default); the black list still applies.
    #[default]
    Any,
    /// Only clients in `lan.networks`.
    Lan,
    /// Only clients in `access.list`.
    List,
}

/// `[access]`: who may talk to the server at all, before any question of
/// relaying.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Access {
    /// Which clients are admitted.
    pub allow: Allow,
    /// The networks admitted by `allow = "list"`, in the forms of
    /// `lan.networks`.
    pub list: Vec<String>,
}

/// `[relay]`: who may send mail to foreign domains through this server.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Relay {
    /// The LAN must authenticate too: being inside no longer lets a client
    /// relay; authenticating as a user with the relay right does.
    pub require_auth: bool,
    /// Mailtraq's "relay for non-local senders": a LAN client may relay
    /// with any sender. Off, only with a sender in a local domain. Default
    /// on.
    pub non_local_senders_in_lan: bool,
    /// Relay for every client, anywhere: an open relay. Refused unless
    /// `acknowledge_open_relay`.
    pub outside_lan: bool,
    /// Sender patterns (as in the lists) trusted to relay from anywhere.
    /// Anyone can forge a sender, so this is an open relay too; refused
    /// unless `acknowledge_open_relay`.
    pub always_from: Vec<String>,
    /// For a trusted client, rewrite `user%domain@local` to `user@domain`
    /// and decide again (the percent hack). An untrusted client's routed
    /// address is refused whatever this says.
    pub percent_hack: bool,
    /// The same for UUCP bang paths, `domain!user@local`.
    pub bang_path: bool,
    /// Lets a configuration load that makes an open relay: `outside_lan`,
    /// `always_from`, or a LAN or access list that covers every address.
    /// For tests; `relayguard lint` flags it.
    pub acknowledge_open_relay: bool,
}

impl Default for Relay {
    fn default() -> Relay {
        Relay {
            require_auth: false,
            non_local_senders_in_lan: true,
            outside_lan: false,
            always_from: Vec::new(),
            percent_hack: false,
            bang_path: false,
            acknowledge_open_relay: false,
        }
    }
}

/// `[auth]`: SMTP AUTH (PLAIN and LOGIN, RFC 4954).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    /// The accounts. AUTH is offered in the EHLO reply only when there is
    /// at least one.
    pub users: Vec<User>,
    /// AUTH only over TLS: before STARTTLS it is left out of the EHLO
    /// reply and answered `538 5.7.11`, so that no password crosses the
    /// wire readable. Default: on when `[tls]` names a certificate (see
    /// [`Config::auth_requires_tls`]).
    pub require_tls: Option<bool>,
}

/// One `[[auth.users]]` account.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The user name; not empty, and unique.
    pub name: String,
    /// In plain text, compared as is. Without `[tls]` (or with
    /// `auth.require_tls = false`) AUTH is offered in plain text and the
    /// password crosses the wire readable: for trusted networks only.
    pub password: String,
    /// Once authenticated, this user may relay from anywhere. Without it,
    /// authenticating only lifts the checks on local names from outside.
    #[serde(default)]
    pub relay: bool,
}

/// `[lists]`: black and white lists, and Mailtraq's checks on clients
/// outside the LAN that claim a local name.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Lists {
    /// Networks (as in `lan.networks`) and address patterns (`user@domain`,
    /// `*@domain`, `*` wildcards), told apart by the `@`. A listed client
    /// is refused at connect (`554 5.7.1`), a listed sender or recipient
    /// at MAIL or RCPT (`550 5.7.1`).
    pub black: Vec<String>,
    /// Entries in the same forms that the black list does not apply to.
    /// They grant nothing else: a white-listed client may not relay.
    pub white: Vec<String>,
    /// Refuse a sender in a local domain from a client outside the LAN
    /// that has not authenticated (`550 5.7.1`). Default on.
    pub reject_local_sender_outside: bool,
    /// Refuse a HELO/EHLO that names this server or a local domain from a
    /// client outside the LAN that has not authenticated (`550 5.7.1`).
    /// Default on.
    pub reject_local_helo_outside: bool,
}

impl Default for Lists {
    fn default() -> Lists {
        Lists {
            black: Vec::new(),
            white: Vec::new(),
            reject_local_sender_outside: true,
            reject_local_helo_outside: true,
        }
    }
}

/// `[limits]`: what one session may take. Each must be at least 1.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Recipients accepted per transaction; one more RCPT hears
    /// `452 4.5.3`. Default 100.
    pub max_recipients: usize,
    /// The largest message, in octets of the unstuffed body. Announced as
    /// `SIZE`; a larger `SIZE=` at MAIL or a larger body after DATA hears
    /// `552 5.3.4`. Default 10 MiB.
    pub max_message_size: usize,
    /// Error replies a session may get: the command after the last one
    /// hears `421 4.7.0` and the session closes, as Postfix's
    /// `smtpd_hard_error_limit`. Default 20, so that nmap's 16 probes can
    /// finish.
    pub max_errors: usize,
    /// A command line must be complete within this many seconds of its
    /// first octet, and the next one must start within this many seconds of
    /// the last reply; otherwise the session answers `421 4.4.2` and
    /// closes. A deadline, not an idle timer: a byte every few seconds does
    /// not extend it. The node also drops a client that does not read its
    /// replies within this long. Default 300, RFC 5321's five minutes
    /// (§4.5.3.2.7).
    pub command_timeout_secs: u64,
    /// The grace for a message: after the `354`, the whole DATA phase must
    /// end within this many seconds plus one second for every
    /// `min_data_rate` octets received. Default 600.
    pub data_timeout_secs: u64,
    /// The minimum rate, in octets per second, a message must keep up after
    /// the grace of `data_timeout_secs` (Postfix's `smtpd_min_data_rate`).
    /// 0 gives no credit for octets: the whole DATA phase must end within
    /// `data_timeout_secs`. Default 500.
    pub min_data_rate: u64,
    /// The longest a session may last, however it behaves. Default 3600.
    pub session_timeout_secs: u64,
    /// After the n-th failed AUTH of a session, no further input is read
    /// for n times this many milliseconds (at most ten times), as Postfix's
    /// `smtpd_error_sleep_time`. Default 1000.
    pub auth_failure_delay_ms: u64,
    /// Failed AUTH attempts one client address may make, counted across its
    /// connections by the node; beyond them AUTH hears `454 4.7.0` until
    /// `auth_refusal_window_secs` have passed since the last failure
    /// (Postfix's anvil). Default 10.
    pub auth_failures_per_ip: u64,
    /// How long an address that used up `auth_failures_per_ip` is refused
    /// AUTH. Default 600.
    pub auth_refusal_window_secs: u64,
    /// Connections one client address may open per minute; more hear
    /// `421 4.7.0` at once. Default 60.
    pub connections_per_ip_per_minute: u64,
    /// Commands that move no mail (NOOP, RSET, VRFY, HELP) a session may
    /// send between two stored messages: the next one hears `421 4.7.0`
    /// and the session closes, so a NOOP flood cannot keep a connection
    /// (and its log) busy forever. As Postfix's `smtpd_junk_command_limit`.
    /// Default 100.
    pub max_junk_commands: usize,
    /// Error replies a session may get before each further one is followed
    /// by a pause of `error_delay_ms` (Postfix's `smtpd_soft_error_limit`):
    /// a client that keeps erring is slowed down before `max_errors` ends
    /// it. Default 10.
    pub soft_error_limit: usize,
    /// The pause after each error reply beyond `soft_error_limit`, in
    /// milliseconds (Postfix's `smtpd_error_sleep_time`). Default 1000.
    pub error_delay_ms: u64,
    /// Outbound connections open at once to one destination domain's
    /// exchangers (Postfix's `default_destination_concurrency_limit`):
    /// a burst of mail for one domain neither floods its exchanger nor
    /// takes every delivery slot. 0 is read as 1. Default 20.
    pub destination_concurrency_limit: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_recipients: 100,
            max_message_size: 10 * 1024 * 1024,
            max_errors: 20,
            command_timeout_secs: 300,
            data_timeout_secs: 600,
            min_data_rate: 500,
            session_timeout_secs: 3600,
            auth_failure_delay_ms: 1000,
            auth_failures_per_ip: 10,
            auth_refusal_window_secs: 600,
            connections_per_ip_per_minute: 60,
            max_junk_commands: 100,
            soft_error_limit: 10,
            error_delay_ms: 1000,
            destination_concurrency_limit: 20,
        }
    }
}

/// Whether the listener expects a PROXY protocol header from the trusted
/// proxies, and whether clients may also connect directly.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Header {
    /// No header is taken from anyone (the default).
    #[default]
    Off,
    /// A connection from a trusted proxy must open with a header; other
    /// clients connect directly and are served as themselves.
    Optional,
    /// Every connection must come from a trusted proxy and open with a
    /// header; a direct connection hears `554 5.7.0` and is closed.
    Required,
}

/// `[proxy]`: who may say who the client is. Behind a load balancer or a
/// container's userland proxy every client arrives from the proxy's
/// address; believing that address is how a relay becomes open, so the
/// proxy must name the client (PROXY protocol header or XCLIENT) and only
/// the proxies listed here are believed.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Proxy {
    /// The proxies' own addresses, in the forms of `lan.networks`. Only a
    /// connection from one of them may send a PROXY header or XCLIENT.
    pub trusted: Vec<String>,
    /// The PROXY protocol header on the listener (`off`, `optional`,
    /// `required`).
    pub header: Header,
    /// Honour Postfix's XCLIENT from the trusted proxies. Default off:
    /// from anyone else XCLIENT is refused whatever this says.
    pub xclient: bool,
}

/// `[tls]`: the server's certificate and key, for STARTTLS. Paths are
/// relative to the configuration file's directory, as the driver that
/// loads them resolves them ([`Tls::resolve`]); the core reads no file.
/// Whether STARTTLS is offered on a connection is the driver's call
/// ([`Session::offer_tls`](crate::Session::offer_tls)): only a driver that
/// can do the handshake offers it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    /// The certificate chain, PEM.
    pub cert: Option<String>,
    /// The private key, PEM.
    pub key: Option<String>,
}

impl Tls {
    /// The certificate and key paths, made relative to `config_dir` (the
    /// directory of the configuration file) unless absolute; `None`
    /// without a certificate.
    pub fn resolve(&self, config_dir: &std::path::Path) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
        let (cert, key) = (self.cert.as_ref()?, self.key.as_ref()?);
        Some((config_dir.join(cert), config_dir.join(key)))
    }
}

/// A configuration error, with the place in the file where there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The line of the problem, from 1, when it can be placed.
    pub line: Option<usize>,
    /// The column, from 1, in characters, when it can be placed.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: {}", self.message),
            (Some(l), None) => write!(f, "line {l}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A problem found by [`Config::validate`]: the message, and the text to
/// look for in the file to say where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// What is wrong, naming the key.
    pub message: String,
    /// The offending entry in quotes, or the key: its first place outside
    /// a comment is where the error is shown.
    pub near: String,
}

impl Config {
    /// Parses TOML text and validates it. Errors carry the line and column
    /// of the bad key or value.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config = Config::parse_toml(text)?;
        config.validate().map_err(|inv| {
            let (line, column) = match locate(text, &inv.near) {
                Some((l, c)) => (Some(l), Some(c)),
                None => (None, None),
            };
            ConfigError {
                line,
                column,
                message: inv.message,
            }
        })?;
        Ok(config)
    }

    /// Checks what serde cannot: entries of lists, domains, addresses,
    /// routes, limits, and the settings that make an open relay, which are
    /// refused unless `acknowledge_open_relay = true`.
    pub fn validate(&self) -> Result<(), Invalid> {
        use crate::address::{Mailbox, canonical_domain};
        use crate::netlist::NetList;
        let inv = |message: String, near: &str| Invalid {
            message,
            near: near.to_string(),
        };
        let quoted = |s: &str| format!("\"{s}\"");
        canonical_domain(&self.hostname)
            .map_err(|e| inv(format!("hostname {:?}: {e}", self.hostname), "hostname"))?;
        for (key, list) in [
            ("domains.local", &self.domains.local),
            ("domains.relay_to", &self.domains.relay_to),
        ] {
            for d in list {
                canonical_domain(d).map_err(|e| inv(format!("{key}: {d:?}: {e}"), &quoted(d)))?;
            }
        }
        for m in self.domains.mailboxes.iter().flatten() {
            let parsed =
                Mailbox::parse(m).map_err(|e| inv(format!("domains.mailboxes: {m:?}: {e}"), &quoted(m)))?;
            if parsed.domain.is_none() {
                return Err(inv(
                    format!("domains.mailboxes: {m:?} needs a domain"),
                    &quoted(m),
                ));
            }
        }
        let nets = |key: &str, entries: &[String]| {
            NetList::parse(entries.iter().map(String::as_str))
                .map_err(|(entry, why)| inv(format!("{key}: {why}"), &quoted(&entry)))
        };
        let lan = nets("lan.networks", &self.lan.networks)?;
        let access = nets("access.list", &self.access.list)?;
        let trusted = nets("proxy.trusted", &self.proxy.trusted)?;
        if (self.proxy.header != Header::Off || self.proxy.xclient) && self.proxy.trusted.is_empty() {
            return Err(inv(
                "proxy.header or proxy.xclient is on but proxy.trusted is empty: no proxy would be believed"
                    .into(),
                "[proxy]",
            ));
        }
        for (key, list) in [
            ("lists.black", &self.lists.black),
            ("lists.white", &self.lists.white),
        ] {
            for e in list {
                if !e.contains('@') && !NetList::is_entry(e) {
                    return Err(inv(
                        format!(
                            "{key}: {e:?} is neither a network nor an address pattern (user@domain, *@domain)"
                        ),
                        &quoted(e),
                    ));
                }
            }
        }
        for e in &self.relay.always_from {
            if !e.contains('@') {
                return Err(inv(
                    format!("relay.always_from: {e:?} is not an address pattern"),
                    &quoted(e),
                ));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for u in &self.auth.users {
            if u.name.is_empty() || !names.insert(u.name.as_str()) {
                return Err(inv(
                    format!("auth.users: user name {:?} is empty or repeated", u.name),
                    &quoted(&u.name),
                ));
            }
        }
        match (&self.tls.cert, &self.tls.key) {
            (Some(_), None) => return Err(inv("tls.cert is set but tls.key is not".into(), "cert")),
            (None, Some(_)) => return Err(inv("tls.key is set but tls.cert is not".into(), "key")),
            (Some(c), Some(k)) => {
                for (key, v) in [("tls.cert", c), ("tls.key", k)] {
                    if v.trim().is_empty() {
                        return Err(inv(format!("{key} is empty: name a PEM file"), &quoted(v)));
                    }
                }
            }
            (None, None) => {}
        }
        for (domain, target) in &self.routes {
            if domain != "*" {
                canonical_domain(domain)
                    .map_err(|e| inv(format!("routes: {domain:?}: {e}"), &quoted(domain)))?;
            }
            target.parse::<std::net::SocketAddr>().map_err(|_| {
                inv(
                    format!("routes: {target:?} is not host:port (an IP address and a port)"),
                    &quoted(target),
                )
            })?;
        }
        let l = &self.limits;
        for (key, v) in [
            ("max_recipients", l.max_recipients as u64),
            ("max_message_size", l.max_message_size as u64),
            ("max_errors", l.max_errors as u64),
            ("command_timeout_secs", l.command_timeout_secs),
            ("data_timeout_secs", l.data_timeout_secs),
            ("session_timeout_secs", l.session_timeout_secs),
            ("auth_failures_per_ip", l.auth_failures_per_ip),
            ("auth_refusal_window_secs", l.auth_refusal_window_secs),
            ("connections_per_ip_per_minute", l.connections_per_ip_per_minute),
            ("max_junk_commands", l.max_junk_commands as u64),
        ] {
            if v == 0 {
                return Err(inv(format!("limits.{key} must be at least 1"), key));
            }
        }
        if !self.relay.acknowledge_open_relay {
            let open = "makes an open relay; refused unless relay.acknowledge_open_relay = true";
            if self.relay.outside_lan {
                return Err(inv(format!("relay.outside_lan = true {open}"), "outside_lan"));
            }
            if !self.relay.always_from.is_empty() {
                return Err(inv(
                    format!("relay.always_from trusts a sender address anyone can forge: it {open}"),
                    "always_from",
                ));
            }
            if lan.covers_everybody() {
                return Err(inv(
                    format!("lan.networks covers every address: it {open}"),
                    "networks",
                ));
            }
            if trusted.covers_everybody() {
                return Err(inv(
                    format!("proxy.trusted covers every address: anyone may say it is inside, it {open}"),
                    "trusted",
                ));
            }
            if access.covers_everybody() && self.access.allow == Allow::List {
                return Err(inv(
                    format!("access.list covers every address: it {open}"),
                    "list",
                ));
            }
        }
        Ok(())
    }

    /// Whether AUTH needs TLS first: `auth.require_tls`, by default on
    /// when `[tls]` names a certificate.
    pub fn auth_requires_tls(&self) -> bool {
        self.auth.require_tls.unwrap_or(self.tls.cert.is_some())
    }

    /// The configuration as TOML that [`Config::parse_toml`] reads back to
    /// an equal value: for configurations that the simulation and the
    /// fuzzers generate and write next to their findings.
    pub fn to_toml(&self) -> String {
        // Every field is a string, a number, a bool, a list or a string-keyed
        // table, all of which TOML can say: this cannot fail.
        toml::to_string(self).expect("a Config is always expressible in TOML")
    }

    /// Parses TOML text without the checks of [`Config::validate`].
    pub fn parse_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let (line, column) = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            ConfigError {
                line,
                column,
                message: e.message().to_string(),
            }
        })
    }
}

/// Where `needle` first appears outside comments, as line and column.
fn locate(text: &str, needle: &str) -> Option<(usize, usize)> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let code = line.split('#').next().unwrap_or("");
        if let Some(i) = code.find(needle) {
            return Some(line_col(text, offset + i));
        }
        offset += line.len();
    }
    None
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_closed() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c, Config::default());
        assert!(!c.relay.outside_lan);
        assert!(c.lan.networks.is_empty());
    }

    #[test]
    fn bad_entries_name_line_and_column() {
        let e = Config::from_toml("[lan]\nnetworks = [\"192.168.1.0/24\", \"10.1.*\"]\n").unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(31)), "{e}");
        assert!(e.message.contains("10.1.*"), "{e}");
        let e = Config::from_toml("[relay]\noutside_lan = true\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(Config::from_toml("[relay]\noutside_lan = true\nacknowledge_open_relay = true\n").is_ok());
        let e = Config::from_toml("[lan]\nnetworks = [\"*.*.*.*\"]\n").unwrap_err();
        assert!(e.message.contains("every address"), "{e}");
        let e = Config::from_toml("[routes]\n\"*\" = \"localhost:25\"\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        let e = Config::from_toml("[limits]\nmax_errors = 0\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn proxy_entries_are_checked_with_line_and_column() {
        let c =
            Config::from_toml("[proxy]\ntrusted = [\"10.0.0.5\"]\nheader = \"required\"\nxclient = true\n")
                .unwrap();
        assert_eq!(c.proxy.header, Header::Required);
        assert!(c.proxy.xclient);
        let e = Config::from_toml("[proxy]\ntrusted = [\"10.0.0.5\", \"10.0.*\"]\n").unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(24)), "{e}");
        let e = Config::from_toml("[proxy]\nheader = \"sometimes\"\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        let e = Config::from_toml("[proxy]\nheader = \"optional\"\n").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
        assert!(e.message.contains("proxy.trusted is empty"), "{e}");
        let e = Config::from_toml("[proxy]\ntrusted = [\"0.0.0.0/0\"]\n").unwrap_err();
        assert!(e.message.contains("every address"), "{e}");
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let e = Config::from_toml("hostname = \"a\"\n[relay]\n  open = true\n").unwrap_err();
        assert_eq!((e.line, e.column), (Some(3), Some(3)), "{e}");
        assert!(e.message.contains("open"), "{e}");
    }
}
