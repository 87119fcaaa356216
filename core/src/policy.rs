//! Relay decisions, compiled once from [`Config`].
//!
//! Every decision carries a [`Reason`] a person can read, and an accepted
//! recipient carries its [`Destination`]: routing delivers what was decided
//! here and never parses the address again.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::address::{Domain, Mailbox, Path};
use crate::config::{Config, ConfigError};
use crate::reply::{Enhanced, Reply};

/// What the session knows when it asks.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub client: IpAddr,
    pub helo: Option<&'a str>,
    /// The authenticated user, if any.
    pub user: Option<&'a str>,
    pub sender: Option<&'a Path>,
    /// Recipients accepted so far in this transaction.
    pub accepted: usize,
}

/// Where an accepted recipient goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Destination {
    /// A local mailbox, by its canonical key `local@domain`.
    Local { mailbox: String },
    /// A `relay_to` domain (backup MX): accepted from anyone, sent on.
    RelayTo { mailbox: Mailbox },
    /// A foreign domain, relayed for a trusted client.
    Remote { mailbox: Mailbox },
}

impl Destination {
    pub fn is_local(&self) -> bool {
        matches!(self, Destination::Local { .. })
    }

    /// The address mail is sent to, for the ones that leave this server.
    pub fn remote_mailbox(&self) -> Option<&Mailbox> {
        match self {
            Destination::Local { .. } => None,
            Destination::RelayTo { mailbox } | Destination::Remote { mailbox } => Some(mailbox),
        }
    }
}

/// Why a decision went the way it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    LocalMailbox,
    UnknownMailbox,
    RelayTo,
    TrustedLan,
    Authenticated(String),
    NotTrusted,
    Routed,
    Unqualified,
    TooManyRecipients,
    Allowed,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::LocalMailbox => f.write_str("recipient is a local mailbox"),
            Reason::UnknownMailbox => f.write_str("local domain, but no such mailbox"),
            Reason::RelayTo => f.write_str("recipient domain is a relay_to (backup MX) domain"),
            Reason::TrustedLan => f.write_str("client is in the LAN"),
            Reason::Authenticated(u) => write!(f, "client authenticated as {u}, who may relay"),
            Reason::NotTrusted => f.write_str("foreign recipient and the client is not trusted to relay"),
            Reason::Routed => {
                f.write_str("sender-specified routing (%, ! or @ in the local part) from an untrusted client")
            }
            Reason::Unqualified => f.write_str("recipient has no domain"),
            Reason::TooManyRecipients => f.write_str("too many recipients"),
            Reason::Allowed => f.write_str("allowed"),
        }
    }
}

/// A refusal: the reply to send, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reply: Reply,
    pub reason: Reason,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Accept {
        destination: Destination,
        reason: Reason,
    },
    Refuse(Refusal),
}

/// The compiled relay policy.
#[derive(Clone, Debug)]
pub struct Policy {
    config: Config,
    local: BTreeSet<Domain>,
    mailboxes: Option<BTreeSet<String>>,
    lan: Vec<IpNet>,
}

fn refuse(code: u16, e: Enhanced, text: String, reason: Reason) -> Refusal {
    Refusal {
        reply: Reply::new(code, e, text),
        reason,
    }
}

impl Policy {
    pub fn new(config: Config) -> Result<Policy, ConfigError> {
        let err = |m: String| ConfigError {
            line: None,
            column: None,
            message: m,
        };
        let mut local = BTreeSet::new();
        for d in config
            .domains
            .local
            .iter()
            .chain(std::iter::once(&config.hostname))
        {
            local.insert(crate::address::canonical_domain(d).map_err(|e| err(format!("domain {d:?}: {e}")))?);
        }
        for a in &config.own_addresses {
            local.insert(Domain::Literal(*a));
        }
        let mailboxes = match &config.domains.mailboxes {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|m| {
                        Mailbox::parse(m)
                            .map(|m| m.key())
                            .map_err(|e| err(format!("mailbox {m:?}: {e}")))
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        let lan = config
            .lan
            .networks
            .iter()
            .map(|n| {
                n.parse::<IpNet>()
                    .or_else(|_| n.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| err(format!("LAN entry {n:?} is not a network")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Policy {
            config,
            local,
            mailboxes,
            lan,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn hostname(&self) -> &str {
        &self.config.hostname
    }

    pub fn has_users(&self) -> bool {
        !self.config.auth.users.is_empty()
    }

    pub fn check_password(&self, user: &str, password: &str) -> bool {
        self.config
            .auth
            .users
            .iter()
            .any(|u| u.name == user && u.password == password)
    }

    fn in_lan(&self, ip: IpAddr) -> bool {
        self.lan.iter().any(|n| n.contains(&ip))
    }

    pub fn connect(&self, _client: IpAddr) -> Result<(), Refusal> {
        Ok(())
    }

    pub fn helo(&self, _ctx: &Context, _name: &str) -> Result<(), Refusal> {
        Ok(())
    }

    pub fn mail(&self, _ctx: &Context, _from: &Path) -> Result<(), Refusal> {
        Ok(())
    }

    /// Why the client may relay, or `None`.
    pub fn trust(&self, ctx: &Context) -> Option<Reason> {
        if let Some(u) = ctx.user {
            if self.config.auth.users.iter().any(|x| x.name == u && x.relay) {
                return Some(Reason::Authenticated(u.to_string()));
            }
        }
        if self.in_lan(ctx.client) && !self.config.relay.require_auth {
            return Some(Reason::TrustedLan);
        }
        None
    }

    pub fn rcpt(&self, ctx: &Context, to: &Path) -> Decision {
        if ctx.accepted >= self.config.limits.max_recipients {
            return Decision::Refuse(refuse(
                452,
                Enhanced(4, 5, 3),
                "Too many recipients".into(),
                Reason::TooManyRecipients,
            ));
        }
        let Some(m) = &to.mailbox else {
            return Decision::Refuse(refuse(
                501,
                Enhanced(5, 1, 3),
                "Null recipient".into(),
                Reason::Unqualified,
            ));
        };
        let trust = self.trust(ctx);
        if m.is_routed() && trust.is_none() {
            return Decision::Refuse(refuse(
                550,
                Enhanced(5, 7, 1),
                format!("<{m}>: Relay access denied"),
                Reason::Routed,
            ));
        }
        match &m.domain {
            None if m.local_key() == "postmaster" => Decision::Accept {
                destination: Destination::Local {
                    mailbox: format!("postmaster@{}", self.config.hostname.to_ascii_lowercase()),
                },
                reason: Reason::LocalMailbox,
            },
            None => Decision::Refuse(refuse(
                501,
                Enhanced(5, 1, 3),
                format!("<{m}>: Recipient address must be fully qualified"),
                Reason::Unqualified,
            )),
            Some(d) if self.local.contains(d) => {
                let key = m.key();
                if self.mailboxes.as_ref().is_none_or(|s| s.contains(&key)) {
                    Decision::Accept {
                        destination: Destination::Local { mailbox: key },
                        reason: Reason::LocalMailbox,
                    }
                } else {
                    Decision::Refuse(refuse(
                        550,
                        Enhanced(5, 1, 1),
                        format!("<{m}>: Recipient address rejected: User unknown"),
                        Reason::UnknownMailbox,
                    ))
                }
            }
            Some(_) => match trust {
                Some(reason) => Decision::Accept {
                    destination: Destination::Remote { mailbox: m.clone() },
                    reason,
                },
                None => Decision::Refuse(refuse(
                    550,
                    Enhanced(5, 7, 1),
                    format!("<{m}>: Relay access denied"),
                    Reason::NotTrusted,
                )),
            },
        }
    }
}
