//! Relay decisions, compiled once from [`Config`].
//!
//! The rules are Mailtraq's relaying settings (local domains and aliases,
//! the LAN, "relay for non-local senders" inside it, SMTP authentication,
//! black and white lists, the checks on local senders and HELO names from
//! outside), made safe the way Postfix is: sender-specified routing (`%`,
//! `!`, `@` in a local part, quoted or not) is never honoured for an
//! untrusted client, even at a local or backup-MX domain
//! (`allow_untrusted_routing = no`, `resolve_dequoted_address = yes`).
//!
//! Every decision carries a [`Reason`] a person can read, and an accepted
//! recipient carries its [`Destination`]: routing delivers what was decided
//! here and never parses the address again.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::address::{self, Domain, Mailbox, Path, RoutingKind, canonical_domain};
use crate::addrlist::AddrList;
use crate::check::{Bug, Bugs};
use crate::config::{Allow, Config, ConfigError};
use crate::foldkey::{FoldMap, Key};
use crate::netlist::NetList;
use crate::reply::{Enhanced, Reply};

/// What the session knows when it asks.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The client's address.
    pub client: IpAddr,
    /// The HELO/EHLO argument, once one was accepted.
    pub helo: Option<&'a str>,
    /// The authenticated user, if any.
    pub user: Option<&'a str>,
    /// The reverse-path of the current transaction, once MAIL was accepted.
    pub sender: Option<&'a Path>,
    /// Recipients accepted so far in this transaction.
    pub accepted: usize,
}

/// Where an accepted recipient goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Destination {
    /// A local mailbox, by its canonical key `local@domain`.
    Local {
        /// The key: local part folded to lower case, and the local domain
        /// the mailbox is filed under, which may not be the one written
        /// (all local domains share one namespace).
        mailbox: String,
    },
    /// A `relay_to` domain (backup MX): accepted from anyone, sent on.
    RelayTo {
        /// The recipient, canonical.
        mailbox: Mailbox,
    },
    /// A foreign domain, relayed for a trusted client.
    Remote {
        /// The recipient, canonical (after any rewrite of a routed address).
        mailbox: Mailbox,
    },
}

impl Destination {
    /// Whether the mail is delivered here rather than sent on.
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

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Local { mailbox } => write!(f, "local mailbox {mailbox}"),
            Destination::RelayTo { mailbox } => write!(f, "relay to {mailbox} (backup MX)"),
            Destination::Remote { mailbox } => write!(f, "remote {mailbox}"),
        }
    }
}

/// Why a decision went the way it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A plain "allowed". The policy does not give it at present: connect,
    /// HELO and MAIL pass with `Ok(())`, and every accepted RCPT names why.
    Allowed,
    /// Access control refuses the client (`access.allow`).
    AccessDenied,
    /// The client's address is on the black list and not on the white
    /// list: `554 5.7.1` at connect.
    BlackListedClient,
    /// The sender matches the black list and not the white list:
    /// `550 5.7.1` at MAIL.
    BlackListedSender,
    /// The recipient matches the black list and not the white list:
    /// `550 5.7.1` at RCPT.
    BlackListedRecipient,
    /// A local domain as the sender, from outside the LAN, unauthenticated.
    LocalSenderOutside,
    /// A local name in HELO/EHLO from outside the LAN, unauthenticated.
    LocalHeloOutside,
    /// A sender without a domain (`<user>`): `501 5.1.7`.
    UnqualifiedSender,
    /// Accepted: a mailbox of a local domain, or postmaster.
    LocalMailbox,
    /// A local domain, but `domains.mailboxes` lists no such local part:
    /// `550 5.1.1`.
    UnknownMailbox,
    /// Accepted: a `relay_to` (backup MX) domain, from anyone.
    RelayTo,
    /// Trusted to relay: the client is in the LAN, `relay.require_auth` is
    /// off, and `non_local_senders_in_lan` or a local sender allows it.
    TrustedLan,
    /// Trusted to relay: the client authenticated as this user, who has the
    /// relay right.
    Authenticated(String),
    /// An insecure setting trusts the client (`outside_lan`, `always_from`).
    Insecure(&'static str),
    /// A foreign domain, and the client is not trusted to relay:
    /// `550 5.7.1 Relay access denied`.
    NotTrusted,
    /// Sender-specified routing (`%`, `!` or `@` in the local part): refused
    /// from a client not trusted to relay (`550 5.7.1`), even at a local
    /// domain, or when the rewritten address is malformed (`501 5.1.3`).
    /// Under the injected bug `trust-routed` it is also what trusts an
    /// untrusted client's rewritten address.
    Routed,
    /// Routed, and rewritten for a trusted client by the percent hack or a bang path.
    Rewritten(Box<Reason>),
    /// A recipient without a domain other than postmaster, or `<>` as a
    /// recipient: `501 5.1.3`.
    Unqualified,
    /// `limits.max_recipients` already accepted in this transaction:
    /// `452 4.5.3`, and the client may send the rest in another one.
    TooManyRecipients,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Allowed => f.write_str("allowed"),
            Reason::AccessDenied => f.write_str("access control (access.allow) does not admit this client"),
            Reason::BlackListedClient => f.write_str("client address is on the black list"),
            Reason::BlackListedSender => f.write_str("sender address is on the black list"),
            Reason::BlackListedRecipient => f.write_str("recipient address is on the black list"),
            Reason::LocalSenderOutside => f.write_str(
                "sender claims a local domain from outside the LAN without authenticating (reject_local_sender_outside)",
            ),
            Reason::LocalHeloOutside => f.write_str(
                "HELO names this server or a local domain from outside the LAN (reject_local_helo_outside)",
            ),
            Reason::UnqualifiedSender => f.write_str("sender address has no domain"),
            Reason::LocalMailbox => f.write_str("recipient is a local mailbox"),
            Reason::UnknownMailbox => f.write_str("local domain, but no such mailbox"),
            Reason::RelayTo => f.write_str("recipient domain is a relay_to (backup MX) domain"),
            Reason::TrustedLan => f.write_str("client is in the LAN, which may relay"),
            Reason::Authenticated(u) => write!(f, "client authenticated as {u}, who may relay"),
            Reason::Insecure(what) => write!(f, "trusted by the insecure setting {what}"),
            Reason::NotTrusted => f.write_str(
                "foreign recipient, and the client is not trusted to relay (not in the LAN, not authenticated with the relay right)",
            ),
            Reason::Routed => f.write_str(
                "sender-specified routing (%, ! or @ in the local part) from a client not trusted to relay",
            ),
            Reason::Rewritten(r) => write!(f, "routed address rewritten for a trusted client; then: {r}"),
            Reason::Unqualified => f.write_str("recipient has no domain (only postmaster may)"),
            Reason::TooManyRecipients => f.write_str("too many recipients (limits.max_recipients)"),
        }
    }
}

/// A refusal: the reply to send, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What the session sends.
    pub reply: Reply,
    /// Why, for the log and `relayguard explain`.
    pub reason: Reason,
}

/// The policy's answer to one RCPT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The recipient is accepted (`250 2.1.5`).
    Accept {
        /// Where it goes.
        destination: Destination,
        /// Why it was accepted.
        reason: Reason,
    },
    /// The recipient is refused with this reply.
    Refuse(Refusal),
}

fn refuse(code: u16, e: Enhanced, text: String, reason: Reason) -> Refusal {
    Refusal {
        reply: Reply::new(code, e, text),
        reason,
    }
}

/// How many routing rewrites a trusted client's address may go through.
const MAX_REWRITES: usize = 4;

/// The compiled relay policy.
#[derive(Clone, Debug)]
pub struct Policy {
    config: Config,
    /// Local domains (with the hostname and own literals), each mapped to
    /// the primary domain, under which an alias's mailboxes are looked up
    /// when they are not listed under the alias itself.
    local: BTreeMap<Domain, Domain>,
    primary: Domain,
    /// `[domains].local` alone.
    configured_local: std::collections::BTreeSet<Domain>,
    relay_to: std::collections::BTreeSet<Domain>,
    /// Local part → the canonical key of its mailbox; `None`: any local part.
    mailboxes: Option<FoldMap<String>>,
    lan: NetList,
    access: NetList,
    black_nets: NetList,
    white_nets: NetList,
    black_addrs: AddrList,
    white_addrs: AddrList,
    always_from: AddrList,
    /// `proxy.trusted`: whose word on the client's address is believed.
    trusted_proxies: NetList,
    /// Injected bugs switched on in this policy and the sessions that use
    /// it; kept out of [`Config`], which is only what a user can write.
    bugs: Bugs,
}

impl Policy {
    /// Validates and compiles a configuration.
    pub fn new(config: Config) -> Result<Policy, ConfigError> {
        Policy::with_bugs(config, Bugs::NONE)
    }

    /// As [`Policy::new`], with injected bugs switched on, for proving that
    /// the checkers catch them.
    pub fn with_bugs(config: Config, bugs: Bugs) -> Result<Policy, ConfigError> {
        config.validate().map_err(|inv| ConfigError {
            line: None,
            column: None,
            message: inv.message,
        })?;
        let dom = |d: &str| canonical_domain(d).expect("validated");
        let hostname = dom(&config.hostname);
        let primary = config.domains.local.first().map_or(hostname.clone(), |d| dom(d));
        let mut local = BTreeMap::new();
        for d in &config.domains.local {
            local.insert(dom(d), primary.clone());
        }
        local.entry(hostname).or_insert(primary.clone());
        for a in &config.own_addresses {
            local.entry(Domain::Literal(*a)).or_insert(primary.clone());
        }
        // Mailtraq: the local domains are one Domain Name and its aliases,
        // so a mailbox listed under any of them answers at all of them.
        // Keyed by local part; the smallest listed key names the mailbox,
        // whatever the order of the list.
        let mailboxes = config.domains.mailboxes.as_ref().map(|list| {
            let mut map = FoldMap::default();
            for m in list.iter().filter_map(|m| Mailbox::parse(m).ok()) {
                let key = m.key();
                let listed = map.get_or_insert_with(&m.local_key(), || key.clone());
                if key < *listed {
                    *listed = key;
                }
            }
            map
        });
        let nets =
            |entries: &[String]| NetList::parse(entries.iter().map(String::as_str)).expect("validated");
        let split = |entries: &[String]| {
            let (addrs, nets): (Vec<&String>, Vec<&String>) = entries.iter().partition(|e| e.contains('@'));
            (
                NetList::parse(nets.into_iter().map(String::as_str)).expect("validated"),
                AddrList::new(addrs.into_iter().map(String::as_str)),
            )
        };
        let (black_nets, black_addrs) = split(&config.lists.black);
        let (white_nets, white_addrs) = split(&config.lists.white);
        Ok(Policy {
            relay_to: config.domains.relay_to.iter().map(|d| dom(d)).collect(),
            configured_local: config.domains.local.iter().map(|d| dom(d)).collect(),
            lan: nets(&config.lan.networks),
            access: nets(&config.access.list),
            always_from: AddrList::new(config.relay.always_from.iter().map(String::as_str)),
            trusted_proxies: nets(&config.proxy.trusted),
            local,
            primary,
            mailboxes,
            black_nets,
            white_nets,
            black_addrs,
            white_addrs,
            config,
            bugs,
        })
    }

    /// Parses, validates and compiles TOML; errors carry line and column.
    pub fn from_toml(text: &str) -> Result<Policy, ConfigError> {
        Policy::new(Config::from_toml(text)?)
    }

    /// The injected bugs switched on (none outside tests and `--buggify`).
    pub fn bugs(&self) -> Bugs {
        self.bugs
    }

    /// The configuration it was compiled from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// This server's name as configured, for the greeting and EHLO reply.
    pub fn hostname(&self) -> &str {
        &self.config.hostname
    }

    /// Whether any AUTH user is configured: only then is AUTH offered.
    pub fn has_users(&self) -> bool {
        !self.config.auth.users.is_empty()
    }

    /// Whether `user` and `password` are those of a configured user,
    /// compared exactly.
    pub fn check_password(&self, user: &str, password: &str) -> bool {
        self.config
            .auth
            .users
            .iter()
            .any(|u| u.name == user && u.password == password)
    }

    /// Whether mail to `d` is delivered here: a local domain, the hostname
    /// or one of `own_addresses` as a literal. `d` must be canonical
    /// ([`canonical_domain`]).
    pub fn is_local_domain(&self, d: &Domain) -> bool {
        self.local.contains_key(d)
    }

    /// Inside the LAN, for the rules that depend on it. The injected bug
    /// `lan-check-off` lets a local sender count as inside.
    fn inside(&self, ctx: &Context) -> bool {
        self.lan.contains(ctx.client)
            || (self.bugs.has(Bug::LanCheckOff) && ctx.sender.is_some_and(|s| self.sender_is_local(s)))
    }

    /// A sender in one of the configured local domains. The hostname and
    /// the address literals are not counted: Mailtraq's rule is about the
    /// domains it serves, and probes use `user@[IP]` senders on purpose so
    /// that the recipient checks are what they test.
    fn sender_is_local(&self, sender: &Path) -> bool {
        sender
            .mailbox
            .as_ref()
            .and_then(|m| m.domain.as_ref())
            .is_some_and(|d| self.configured_local.contains(d))
    }

    /// Whether a connection from `ip` (the socket's peer, never an
    /// address a proxy named) may say who the client is, with a PROXY
    /// header or XCLIENT.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.contains(ip)
    }

    fn white_listed(&self, ip: IpAddr) -> bool {
        self.white_nets.contains(ip)
    }

    /// Whether the client may talk at all: `access.allow`, then the black
    /// list (unless white-listed). A refusal is sent as the greeting.
    pub fn connect(&self, client: IpAddr) -> Result<(), Refusal> {
        let denied = |reason| {
            refuse(
                554,
                Enhanced(5, 7, 1),
                format!("Access denied for {client}"),
                reason,
            )
        };
        let admitted = match self.config.access.allow {
            Allow::Any => true,
            Allow::Lan => self.lan.contains(client),
            Allow::List => self.access.contains(client),
        };
        if !admitted {
            return Err(denied(Reason::AccessDenied));
        }
        // The white list beats the black list, and grants nothing else.
        if self.black_nets.contains(client) && !self.white_listed(client) {
            return Err(denied(Reason::BlackListedClient));
        }
        Ok(())
    }

    /// Checks the HELO/EHLO argument: a client outside the LAN that has not
    /// authenticated may not call itself this server or a local domain
    /// (`lists.reject_local_helo_outside`).
    pub fn helo(&self, ctx: &Context, name: &str) -> Result<(), Refusal> {
        if !self.config.lists.reject_local_helo_outside || ctx.user.is_some() || self.inside(ctx) {
            return Ok(());
        }
        let named = canonical_domain(name).is_ok_and(|d| self.is_local_domain(&d));
        if named {
            return Err(refuse(
                550,
                Enhanced(5, 7, 1),
                format!("<{name}>: Helo command rejected: you are not me"),
                Reason::LocalHeloOutside,
            ));
        }
        Ok(())
    }

    /// Checks the reverse-path. `<>` always passes (bounces must get
    /// through); a sender without a domain, a black-listed one, or one in
    /// a local domain from outside the LAN without authentication
    /// (`lists.reject_local_sender_outside`) is refused.
    pub fn mail(&self, ctx: &Context, from: &Path) -> Result<(), Refusal> {
        let Some(m) = &from.mailbox else {
            return Ok(());
        };
        if m.domain.is_none() {
            return Err(refuse(
                501,
                Enhanced(5, 1, 7),
                format!("<{m}>: Sender address must be fully qualified"),
                Reason::UnqualifiedSender,
            ));
        }
        if black_listed(self, m) {
            return Err(refuse(
                550,
                Enhanced(5, 7, 1),
                format!("<{m}>: Sender address rejected: black-listed"),
                Reason::BlackListedSender,
            ));
        }
        if self.config.lists.reject_local_sender_outside
            && ctx.user.is_none()
            && self.sender_is_local(from)
            && !self.inside(&Context {
                sender: Some(from),
                ..*ctx
            })
        {
            return Err(refuse(
                550,
                Enhanced(5, 7, 1),
                format!("<{m}>: Sender address rejected: local sender from outside; authenticate first"),
                Reason::LocalSenderOutside,
            ));
        }
        Ok(())
    }

    /// Why the client may relay, or `None`.
    pub fn trust(&self, ctx: &Context) -> Option<Reason> {
        if let Some(u) = ctx.user {
            if self.config.auth.users.iter().any(|x| x.name == u && x.relay) {
                return Some(Reason::Authenticated(u.to_string()));
            }
        }
        let relay = &self.config.relay;
        if self.inside(ctx)
            && !relay.require_auth
            && (relay.non_local_senders_in_lan || ctx.sender.is_some_and(|s| self.sender_is_local(s)))
        {
            return Some(Reason::TrustedLan);
        }
        // Only loadable with acknowledge_open_relay (Config::validate).
        if relay.outside_lan {
            return Some(Reason::Insecure("relay.outside_lan"));
        }
        let sender = ctx.sender.and_then(|s| s.mailbox.as_ref());
        if sender.is_some_and(|m| list_matches(&self.always_from, m)) {
            return Some(Reason::Insecure("relay.always_from"));
        }
        None
    }

    /// Decides one recipient: the recipient limit, the black list, then
    /// where it goes. Sender-specified routing is refused for a client not
    /// trusted to relay, even at a local or `relay_to` domain; for a
    /// trusted one, `%` and `!` at a local domain are rewritten if
    /// `percent_hack` or `bang_path` say so, at most four times. A foreign
    /// domain is accepted only for a client [`Policy::trust`] trusts.
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
        if black_listed(self, m) {
            return Decision::Refuse(refuse(
                550,
                Enhanced(5, 7, 1),
                format!("<{m}>: Recipient address rejected: black-listed"),
                Reason::BlackListedRecipient,
            ));
        }
        // Asked only where the answer matters (routed or foreign): a
        // local mailbox needs no LAN lookup.
        self.decide(m, &|| self.trust(ctx), 0)
    }

    fn relay_denied(&self, m: &Mailbox, reason: Reason) -> Decision {
        let hint = if self.has_users() {
            "; authenticate first"
        } else {
            ""
        };
        Decision::Refuse(refuse(
            550,
            Enhanced(5, 7, 1),
            format!("<{m}>: Relay access denied{hint}"),
            reason,
        ))
    }

    fn decide(&self, m: &Mailbox, trust: &dyn Fn() -> Option<Reason>, depth: usize) -> Decision {
        if let Some(routing) = m.routing() {
            let bug = self.bugs.has(Bug::TrustRouted);
            let trust = trust();
            if trust.is_none() && !bug {
                return self.relay_denied(m, Reason::Routed);
            }
            let relay = &self.config.relay;
            let rewrite = bug
                || match routing.kind {
                    RoutingKind::Percent => relay.percent_hack,
                    RoutingKind::Bang => relay.bang_path,
                    RoutingKind::At => false,
                };
            // Only what sits at a local domain is ours to rewrite; a routed
            // address at a foreign domain is the next hop's business.
            let at_local = m.domain.as_ref().is_some_and(|d| self.is_local_domain(d));
            if rewrite && at_local && depth < MAX_REWRITES {
                // What may not stand unquoted (a space, a parenthesis, two
                // dots in a row…) is quoted again, so that the mailbox it
                // spells is decided on, not refused as bad syntax.
                let local = if address::is_dot_string(&routing.local) {
                    routing.local.clone()
                } else {
                    format!("\"{}\"", routing.local.replace('\\', "\\\\").replace('"', "\\\""))
                };
                return match Mailbox::from_parts(&local, Some(&routing.domain)) {
                    Ok(target) => {
                        let trust = trust.or(Some(Reason::Routed));
                        match self.decide(&target, &|| trust.clone(), depth + 1) {
                            Decision::Accept { destination, reason } => Decision::Accept {
                                destination,
                                reason: Reason::Rewritten(Box::new(reason)),
                            },
                            refused => refused,
                        }
                    }
                    Err(e) => Decision::Refuse(refuse(
                        501,
                        Enhanced(5, 1, 3),
                        format!("<{m}>: Bad routed address: {e}"),
                        Reason::Routed,
                    )),
                };
            }
        }
        match &m.domain {
            None if m.dequoted.eq_ignore_ascii_case("postmaster") => Decision::Accept {
                destination: Destination::Local {
                    mailbox: format!("postmaster@{}", self.primary),
                },
                reason: Reason::LocalMailbox,
            },
            None => Decision::Refuse(refuse(
                501,
                Enhanced(5, 1, 3),
                format!("<{m}>: Recipient address must be fully qualified"),
                Reason::Unqualified,
            )),
            Some(d) if self.is_local_domain(d) => {
                let found = match &self.mailboxes {
                    None => Some(format!("{}@{}", m.local_key(), self.local[d])),
                    Some(map) => match map.get(&Key::whole(&m.dequoted)) {
                        Some(key) => Some(key.clone()),
                        // RFC 5321 §4.5.1: every domain has a postmaster.
                        None if m.dequoted.eq_ignore_ascii_case("postmaster") => {
                            Some(format!("postmaster@{}", self.primary))
                        }
                        None => None,
                    },
                };
                match found {
                    Some(mailbox) => Decision::Accept {
                        destination: Destination::Local { mailbox },
                        reason: Reason::LocalMailbox,
                    },
                    None => Decision::Refuse(refuse(
                        550,
                        Enhanced(5, 1, 1),
                        format!("<{m}>: Recipient address rejected: User unknown"),
                        Reason::UnknownMailbox,
                    )),
                }
            }
            Some(d) if self.relay_to.contains(d) => Decision::Accept {
                destination: Destination::RelayTo { mailbox: m.clone() },
                reason: Reason::RelayTo,
            },
            Some(_) => match trust() {
                Some(reason) => Decision::Accept {
                    destination: Destination::Remote { mailbox: m.clone() },
                    reason,
                },
                None => self.relay_denied(m, Reason::NotTrusted),
            },
        }
    }
}

/// Whether `m` matches `list`, looked up by its pieces: no `local@domain`
/// key is built per decision (an address literal, rare, still is).
fn list_matches(list: &AddrList, m: &Mailbox) -> bool {
    match &m.domain {
        Some(Domain::Name(d)) => list.matches_mailbox(&m.dequoted, Some(d)),
        None => list.matches_mailbox(&m.dequoted, None),
        Some(Domain::Literal(_)) => list.matches(&m.key()),
    }
}

/// Black-listed and not white-listed.
fn black_listed(p: &Policy, m: &Mailbox) -> bool {
    list_matches(&p.black_addrs, m) && !list_matches(&p.white_addrs, m)
}

#[cfg(test)]
mod tests;
