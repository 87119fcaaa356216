//! The TOML configuration (docs/configuration.md): every key optional,
//! the defaults closed and safe, unknown keys refused with line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub hostname: String,
    pub own_addresses: Vec<IpAddr>,
    pub domains: Domains,
    pub lan: Lan,
    pub access: Access,
    pub relay: Relay,
    pub auth: Auth,
    pub lists: Lists,
    pub limits: Limits,
    pub routes: BTreeMap<String, String>,
    /// Injected bugs, for proving the checkers; never read from TOML.
    #[serde(skip)]
    pub bugs: crate::buggify::Bugs,
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
            routes: BTreeMap::new(),
            bugs: crate::buggify::Bugs::NONE,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Domains {
    pub local: Vec<String>,
    /// Known recipients; `None` means any local part of a local domain.
    pub mailboxes: Option<Vec<String>>,
    pub relay_to: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Lan {
    pub networks: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Allow {
    #[default]
    Any,
    Lan,
    List,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Access {
    pub allow: Allow,
    pub list: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Relay {
    pub require_auth: bool,
    pub non_local_senders_in_lan: bool,
    pub outside_lan: bool,
    pub always_from: Vec<String>,
    pub percent_hack: bool,
    pub bang_path: bool,
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

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    pub users: Vec<User>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub password: String,
    #[serde(default)]
    pub relay: bool,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Lists {
    pub black: Vec<String>,
    pub white: Vec<String>,
    pub reject_local_sender_outside: bool,
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

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_recipients: usize,
    pub max_message_size: usize,
    pub max_errors: usize,
    pub command_timeout_secs: u64,
    pub data_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_recipients: 100,
            max_message_size: 10 * 1024 * 1024,
            max_errors: 20,
            command_timeout_secs: 300,
            data_timeout_secs: 600,
        }
    }
}

/// A configuration error, with the place in the file where there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub line: Option<usize>,
    pub column: Option<usize>,
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
    pub message: String,
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
            if access.covers_everybody() && self.access.allow == Allow::List {
                return Err(inv(
                    format!("access.list covers every address: it {open}"),
                    "list",
                ));
            }
        }
        Ok(())
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
    fn unknown_key_names_line_and_column() {
        let e = Config::from_toml("hostname = \"a\"\n[relay]\n  open = true\n").unwrap_err();
        assert_eq!((e.line, e.column), (Some(3), Some(3)), "{e}");
        assert!(e.message.contains("open"), "{e}");
    }
}
