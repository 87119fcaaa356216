//! Input generators: configurations that cover the option space, peers,
//! and the relay-trick grammar of addresses and sessions.
//!
//! [`FuzzConfig`] reads a fixed number of bytes (only fixed-size fields), so
//! a session input is a fixed header followed by raw bytes, and all-zero
//! header bytes mean a configuration close to `corpus/configs/default.toml`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use relayguard_core::Policy;
use relayguard_core::check::buggify::Bugs;
use relayguard_core::check::oracle::ConfigView;
use relayguard_core::{Config, User};

mod grammar;
mod script;

pub use grammar::{Addr, BodyPiece, DomainKind, DomainSpec, HeloName, LocalSpec, Smuggle, Trailing, spell};
pub use script::{Script, ScriptStep};

/// Client addresses: inside and outside each LAN shape, the server itself.
pub const PEERS: [&str; 10] = [
    "203.0.113.7",
    "192.168.1.7",
    "192.168.1.200",
    "10.1.2.3",
    "10.2.3.15",
    "10.2.3.21",
    "198.51.100.25",
    "fd00::5",
    "::ffff:192.168.1.7",
    "2001:db8::1",
];

/// LAN entries in every form the configuration knows.
const LANS: [&str; 6] = [
    "192.168.1.0/24",
    "192.168.1.7",
    "10.1.*.*",
    "10.2.3.10-20",
    "fd00::/8",
    "10.0.0.0/8",
];

/// Users: name, password, relay right.
pub const USERS: [(&str, &str, bool); 3] = [
    ("carol", "secret", true),
    ("dave", "pw", false),
    ("Carol", "x", false),
];

/// Compiled policies by configuration and bugs (`None`: refused).
type PolicyCache = HashMap<(FuzzConfig, Bugs), Option<(Arc<Policy>, Arc<ConfigView>)>>;

/// A configuration drawn from the option space.
#[derive(Arbitrary, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FuzzConfig {
    /// LAN entries; entry 0 (`192.168.1.0/24`) is on unless its bit is set.
    pub lan: [bool; 6],
    pub require_auth: bool,
    pub local_senders_only: bool,
    pub relay_to: bool,
    pub percent_hack: bool,
    pub bang_path: bool,
    pub no_mailboxes: bool,
    pub idn_domain: bool,
    pub users: [bool; 3],
    pub black: bool,
    pub outside_lan: bool,
    pub always_from: bool,
    pub acknowledge_open_relay: bool,
    pub allow_local_sender_outside: bool,
    pub allow_local_helo_outside: bool,
    pub max_recipients: u8,
    pub max_message_size: u16,
    pub max_errors: u8,
    /// `[tls]` with a certificate: the session offers STARTTLS (the
    /// drivers offer it when the configuration names one), and AUTH waits
    /// for TLS by default. Half the inputs.
    pub tls: bool,
}

impl FuzzConfig {
    pub fn lan_entries(&self) -> Vec<&'static str> {
        LANS.iter()
            .enumerate()
            .filter(|&(i, _)| if i == 0 { !self.lan[0] } else { self.lan[i] })
            .map(|(_, l)| *l)
            .collect()
    }

    pub fn local_domains(&self) -> Vec<&'static str> {
        let mut v = vec!["example.com"];
        if self.idn_domain {
            v.push("bücher.example");
        }
        v
    }

    fn users(&self) -> Vec<(&'static str, &'static str, bool)> {
        USERS
            .iter()
            .enumerate()
            .filter(|&(i, _)| self.users[i])
            .map(|(_, u)| *u)
            .collect()
    }

    /// The user an `auth` choice names, if the configuration has it (or a
    /// name it does not have, for choice 4).
    pub fn user_name(&self, auth: u8) -> Option<&'static str> {
        match auth % 5 {
            0 => None,
            4 => Some("nobody"),
            i => Some(USERS[i as usize - 1].0),
        }
    }

    pub fn max_message_size(&self) -> usize {
        if self.max_message_size == 0 {
            65536
        } else {
            self.max_message_size as usize
        }
    }

    /// The configuration, as [`Config`]; equal to `Config::from_toml(&self.to_toml())`.
    pub fn config(&self) -> Config {
        let mut c = Config {
            hostname: "mail.example.com".into(),
            own_addresses: vec!["198.51.100.25".parse().unwrap()],
            ..Config::default()
        };
        c.domains.local = self.local_domains().iter().map(|s| s.to_string()).collect();
        if !self.no_mailboxes {
            c.domains.mailboxes = Some(
                ["alice@example.com", "bob@example.com", "postmaster@example.com"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            );
        }
        if self.relay_to {
            c.domains.relay_to = vec!["backup.example.org".into()];
        }
        c.lan.networks = self.lan_entries().iter().map(|s| s.to_string()).collect();
        c.relay.require_auth = self.require_auth;
        c.relay.non_local_senders_in_lan = !self.local_senders_only;
        c.relay.outside_lan = self.outside_lan;
        if self.always_from {
            c.relay.always_from = vec!["*@partner.example".into()];
        }
        c.relay.percent_hack = self.percent_hack;
        c.relay.bang_path = self.bang_path;
        c.relay.acknowledge_open_relay = self.acknowledge_open_relay;
        c.auth.users = self
            .users()
            .into_iter()
            .map(|(n, p, r)| User {
                name: n.into(),
                password: p.into(),
                relay: r,
            })
            .collect();
        if self.black {
            c.lists.black = vec!["203.0.113.0/24".into(), "*@spam.example".into()];
        }
        c.lists.reject_local_sender_outside = !self.allow_local_sender_outside;
        c.lists.reject_local_helo_outside = !self.allow_local_helo_outside;
        if self.max_recipients != 0 {
            c.limits.max_recipients = self.max_recipients as usize;
        }
        c.limits.max_message_size = self.max_message_size();
        if self.max_errors != 0 {
            c.limits.max_errors = self.max_errors as usize;
        }
        if self.tls {
            // Never read: the in-memory handshake needs no key.
            c.tls.cert = Some("test-cert.pem".into());
            c.tls.key = Some("test-key.pem".into());
        }
        c
    }

    /// The configuration with `bugs`, compiled; `None` if the policy refuses
    /// it. Compiled policies are cached per thread (the fuzzers run one
    /// configuration many times), so this is cheap after the first call.
    pub fn build(&self, bugs: Bugs) -> Option<Arc<Policy>> {
        self.build_with_view(bugs).map(|(policy, _)| policy)
    }

    /// As [`FuzzConfig::build`], with the wire oracle's reading of the
    /// configuration, cached with it: reading it (IDNA over every local
    /// domain) for each input cost more than many a session.
    pub fn build_with_view(&self, bugs: Bugs) -> Option<(Arc<Policy>, Arc<ConfigView>)> {
        thread_local! {
            static CACHE: RefCell<PolicyCache> = RefCell::new(HashMap::new());
        }
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            if cache.len() > 4096 {
                cache.clear();
            }
            cache
                .entry((*self, bugs))
                .or_insert_with(|| {
                    let policy = Policy::with_bugs(self.config(), bugs).ok()?;
                    let view = ConfigView::new(policy.config());
                    Some((Arc::new(policy), Arc::new(view)))
                })
                .clone()
        })
    }

    /// The configuration as TOML, for regression transcripts.
    pub fn to_toml(&self) -> String {
        format!(
            "# Generated by relayguard-fuzz-targets from a fuzz input.\n{}",
            self.config().to_toml()
        )
    }
}

pub fn peer(i: u8) -> IpAddr {
    PEERS[i as usize % PEERS.len()].parse().unwrap()
}

/// The index of `ip` in [`PEERS`], if it is there.
pub fn peer_index(ip: IpAddr) -> Option<u8> {
    PEERS
        .iter()
        .position(|p| p.parse::<IpAddr>().ok() == Some(ip))
        .map(|i| i as u8)
}

// ---------------------------------------------------------------- raw sessions

/// The `session` target's input: a fixed header, then the client's bytes.
#[derive(Clone, Debug)]
pub struct SessionInput<'a> {
    pub config: FuzzConfig,
    pub peer: u8,
    pub auth: u8,
    pub split: u8,
    pub bytes: &'a [u8],
}

impl<'a> SessionInput<'a> {
    /// The length of the header.
    pub fn header_len() -> usize {
        let zeros = [0u8; 256];
        let mut u = Unstructured::new(&zeros);
        let _ = FuzzConfig::arbitrary(&mut u);
        256 - u.len() + 3
    }

    pub fn decode(data: &'a [u8]) -> Option<SessionInput<'a>> {
        let mut u = Unstructured::new(data);
        let config = FuzzConfig::arbitrary(&mut u).ok()?;
        let peer = u8::arbitrary(&mut u).ok()?;
        let auth = u8::arbitrary(&mut u).ok()?;
        let split = u8::arbitrary(&mut u).ok()?;
        Some(SessionInput {
            config,
            peer,
            auth,
            split,
            bytes: u.take_rest(),
        })
    }

    /// A header for the default configuration, this peer and user.
    pub fn header(peer: u8, auth: u8, split: u8) -> Vec<u8> {
        let mut h = vec![0u8; Self::header_len()];
        let n = h.len();
        h[n - 3] = peer;
        h[n - 2] = auth;
        h[n - 1] = split;
        h
    }

    pub fn peer(&self) -> IpAddr {
        peer(self.peer)
    }

    pub fn auth(&self) -> Option<&'static str> {
        self.config.user_name(self.auth)
    }

    /// The bytes cut into chunks: one chunk for split 0, else chunk sizes
    /// from a small congruential sequence seeded by `split`.
    pub fn chunks(&self) -> Vec<&'a [u8]> {
        split_by(self.bytes, self.split)
    }
}

fn split_by(mut bytes: &[u8], split: u8) -> Vec<&[u8]> {
    if split == 0 {
        return vec![bytes];
    }
    let mut x = split;
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let n = (x as usize % 97 + 1).min(bytes.len());
        out.push(&bytes[..n]);
        bytes = &bytes[n..];
        x = x.wrapping_mul(37).wrapping_add(11);
    }
    out
}

// ---------------------------------------------------------------- the relay-trick grammar

/// The `policy` target's input.
#[derive(Arbitrary, Clone, Debug)]
pub struct PolicyInput {
    pub config: FuzzConfig,
    pub peer: PeerChoice,
    pub auth: u8,
    pub accepted: u8,
    pub sender: Addr,
    pub rcpt: Addr,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct PeerChoice(pub u8);

impl PeerChoice {
    pub fn ip(self) -> IpAddr {
        peer(self.0)
    }
}

/// The `client` target's job.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct ClientJob {
    pub auth: bool,
    pub rcpts: u8,
    pub body: [u8; 8],
    /// The driver can do TLS: STARTTLS when offered, each handshake done.
    pub tls: bool,
    /// The job requires TLS.
    pub require_tls: bool,
}

impl ClientJob {
    pub fn job(&self) -> relayguard_core::client::Job {
        const PIECES: [&[u8]; 8] = [
            b"line",
            b"\r\n",
            b"\n",
            b"\r",
            b".",
            b"..\r\n",
            b"\r\n.\r\n",
            b"\n.\n",
        ];
        let body = self
            .body
            .iter()
            .flat_map(|&b| PIECES[b as usize % 8].iter().copied())
            .collect();
        relayguard_core::client::Job {
            helo: "client.example.org".into(),
            auth: self.auth.then(|| ("carol".into(), "secret".into())),
            mail_from: "alice@example.com".into(),
            rcpt_to: (0..(self.rcpts % 3 + 1))
                .map(|i| format!("r{i}@example.org"))
                .collect(),
            body,
            timeout: std::time::Duration::from_secs(30),
            tls: if self.require_tls {
                relayguard_core::client::TlsMode::Required
            } else {
                relayguard_core::client::TlsMode::Opportunistic
            },
        }
    }
}
