//! The TOML configuration (DESIGN.md "Configuration"): every key optional,
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
            max_errors: 10,
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

impl Config {
    /// Parses TOML text. Errors carry the line and column of the bad key or value.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
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
    fn unknown_key_names_line_and_column() {
        let e = Config::from_toml("hostname = \"a\"\n[relay]\n  open = true\n").unwrap_err();
        assert_eq!((e.line, e.column), (Some(3), Some(3)), "{e}");
        assert!(e.message.contains("open"), "{e}");
    }
}
