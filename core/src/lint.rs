//! Findings about a configuration that loads but may not do what its owner
//! thinks: open-relay settings, LANs wider than a LAN should be, domains
//! listed twice, plain-text passwords. `relayguard lint` prints them.

use std::fmt;

use crate::address::{Mailbox, canonical_domain};
use crate::config::{Allow, Config, Header};
use crate::netlist::NetList;

/// How much a [`Finding`] matters; sorts most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// An open relay, or a server that admits no client at all;
    /// `relayguard lint` exits 1.
    Error,
    /// Not an open relay, but a risk or likely not what was meant: a wide
    /// LAN, plain-text passwords, a mailbox that cannot be reached.
    Warning,
    /// A consequence of the settings worth knowing.
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// One thing [`lint`] found in a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// How much it matters.
    pub severity: Severity,
    /// The configuration key it is about.
    pub key: &'static str,
    /// One line: what and why.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.severity, self.key, self.message)
    }
}

/// Typical container gateway ranges: the address every client seems to
/// come from behind a userland proxy (Docker's default bridge, Podman's).
const CONTAINER_GATEWAYS: [&str; 2] = ["172.17.0.0/16", "10.88.0.0/16"];

/// The trusted-proxy boundary: the commonest open relay is a proxy's
/// address inside the LAN (docs/attacks.md "Who is the client?").
fn proxy_findings(c: &Config, lan: &NetList, add: &mut impl FnMut(Severity, &'static str, String)) {
    let trusted = NetList::parse(c.proxy.trusted.iter().map(String::as_str)).unwrap_or_default();
    if lan.overlaps(&trusted) {
        add(
            Severity::Warning,
            "lan.networks",
            "the LAN contains a trusted proxy's own address: a client the proxy does not name is taken for a LAN client".into(),
        );
    }
    let names_clients = c.proxy.header != Header::Off || c.proxy.xclient;
    for gw in CONTAINER_GATEWAYS {
        let range = NetList::parse([gw]).unwrap_or_default();
        if !names_clients && lan.overlaps(&range) {
            add(
                Severity::Warning,
                "lan.networks",
                format!(
                    "the LAN contains {gw}, a container gateway range, and no PROXY header or XCLIENT is configured: behind a userland proxy every proxied client would be trusted"
                ),
            );
        }
    }
    if let Some(p) = trusted.widest_v4_prefix().filter(|&p| p < 24) {
        add(
            Severity::Warning,
            "proxy.trusted",
            format!("a trusted proxy range as wide as a /{p}: every host in it may say who the client is"),
        );
    }
}

/// Every finding, errors first.
pub fn lint(c: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut add = |severity, key, message: String| {
        out.push(Finding {
            severity,
            key,
            message,
        })
    };
    let lan = NetList::parse(c.lan.networks.iter().map(String::as_str)).unwrap_or_default();
    if c.relay.outside_lan {
        add(
            Severity::Error,
            "relay.outside_lan",
            "relays for any client anywhere: this is an open relay".into(),
        );
    }
    if !c.relay.always_from.is_empty() {
        add(
            Severity::Error,
            "relay.always_from",
            "trusts sender addresses, which anyone can forge: spammers will use them".into(),
        );
    }
    if lan.covers_everybody() {
        add(
            Severity::Error,
            "lan.networks",
            "the LAN covers every address: everybody may relay".into(),
        );
    }
    if c.access.allow == Allow::Lan && lan.is_empty() {
        add(
            Severity::Error,
            "access.allow",
            "\"lan\" with an empty LAN admits no client at all".into(),
        );
    }
    if c.relay.acknowledge_open_relay {
        add(
            Severity::Warning,
            "relay.acknowledge_open_relay",
            "insecure settings are allowed to load; keep this for tests".into(),
        );
    }
    if let Some(p) = lan.widest_v4_prefix().filter(|&p| p < 16) {
        add(
            Severity::Warning,
            "lan.networks",
            format!("a LAN range as wide as a /{p}: every host in it may relay; is it really yours?"),
        );
    }
    proxy_findings(c, &lan, &mut add);
    let local: Vec<String> = c
        .domains
        .local
        .iter()
        .filter_map(|d| canonical_domain(d).ok())
        .map(|d| d.to_string())
        .collect();
    for r in &c.domains.relay_to {
        if let Ok(d) = canonical_domain(r) {
            if local.contains(&d.to_string()) {
                add(
                    Severity::Warning,
                    "domains.relay_to",
                    format!("{r} is also a local domain; mail for it is delivered here, never relayed"),
                );
            }
        }
    }
    if let Some(boxes) = &c.domains.mailboxes {
        let domains: Vec<String> = boxes
            .iter()
            .filter_map(|m| Mailbox::parse(m).ok())
            .filter_map(|m| m.domain.map(|d| d.to_string()))
            .collect();
        for d in &local {
            if !domains.contains(d) {
                add(
                    Severity::Info,
                    "domains.mailboxes",
                    format!(
                        "no mailbox is listed under {d}; it answers with the mailboxes of the other local domains"
                    ),
                );
            }
        }
        for (m, d) in boxes.iter().zip(&domains) {
            if !local.contains(d) {
                add(
                    Severity::Warning,
                    "domains.mailboxes",
                    format!("{m} is not in a local domain; it can never be reached"),
                );
            }
        }
        if boxes.is_empty() {
            add(
                Severity::Warning,
                "domains.mailboxes",
                "an empty list refuses every local recipient".into(),
            );
        }
    }
    lint_mailbox_folders(c, &mut add);
    if c.domains.local.is_empty() && c.domains.relay_to.is_empty() {
        add(
            Severity::Info,
            "domains.local",
            "no local domain: only the host name and postmaster receive mail".into(),
        );
    }
    if !c.auth.users.is_empty() {
        let text = if c.auth_requires_tls() {
            "passwords are stored in plain text in this file: keep it readable by the server only"
        } else {
            "passwords are stored in plain text, and AUTH is offered without TLS (auth.require_tls is off, or no [tls]): use this only on trusted networks"
        };
        add(Severity::Warning, "auth.users", text.into());
    }
    if c.auth.require_tls == Some(true) && c.tls.cert.is_none() {
        add(
            Severity::Warning,
            "auth.require_tls",
            "AUTH needs TLS but [tls] names no certificate: nobody can authenticate".into(),
        );
    }
    if c.relay.require_auth && !c.auth.users.iter().any(|u| u.relay) {
        add(
            Severity::Warning,
            "relay.require_auth",
            "no user has the relay right: nobody can send mail out".into(),
        );
    }
    if !c.lists.reject_local_sender_outside {
        add(
            Severity::Warning,
            "lists.reject_local_sender_outside",
            "outsiders may claim your own domains as sender".into(),
        );
    }
    if c.relay.percent_hack || c.relay.bang_path {
        add(
            Severity::Info,
            "relay.percent_hack",
            "routed addresses are rewritten for trusted clients only; untrusted ones are always refused"
                .into(),
        );
    }
    if c.own_addresses.is_empty() {
        add(
            Severity::Info,
            "own_addresses",
            "mail to user@[this server's IP] is treated as foreign until the addresses are listed".into(),
        );
    }
    out.sort_by_key(|f| f.severity);
    out
}

/// Without a `mailboxes` list every local part is a mailbox, and `serve`
/// makes a folder for each one mail arrives for: outside clients choose how
/// many, up to `domains.max_mailboxes`.
fn lint_mailbox_folders(c: &Config, add: &mut impl FnMut(Severity, &'static str, String)) {
    let max = c.domains.max_mailboxes;
    match &c.domains.mailboxes {
        None => add(
            Severity::Warning,
            "domains.mailboxes",
            format!(
                "no list: every local part is accepted, and outside clients can make the server create up to {max} mailbox folders (domains.max_mailboxes); list the mailboxes"
            ),
        ),
        Some(boxes) if boxes.len() > max => add(
            Severity::Warning,
            "domains.max_mailboxes",
            format!(
                "{} mailboxes are listed, but only {max} folders may be made: mail for the others fails",
                boxes.len()
            ),
        ),
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(toml: &str) -> Vec<Finding> {
        lint(&Config::from_toml(toml).unwrap())
    }

    #[test]
    fn open_relay_settings_are_errors() {
        let f = findings("[relay]\noutside_lan = true\nacknowledge_open_relay = true\n");
        assert_eq!(f[0].severity, Severity::Error);
        assert_eq!(f[0].key, "relay.outside_lan");
    }

    #[test]
    fn wide_lan_and_overlaps_are_warnings() {
        let f = findings(
            "[domains]\nlocal = [\"example.com\"]\nrelay_to = [\"EXAMPLE.com\"]\n[lan]\nnetworks = [\"10.0.0.0/8\"]\n",
        );
        assert!(
            f.iter()
                .any(|x| x.key == "lan.networks" && x.severity == Severity::Warning),
            "{f:?}"
        );
        assert!(f.iter().any(|x| x.key == "domains.relay_to"), "{f:?}");
        assert!(!f.iter().any(|x| x.severity == Severity::Error), "{f:?}");
    }

    #[test]
    fn the_proxy_boundary_is_checked() {
        let has =
            |f: &[Finding], key: &str, text: &str| f.iter().any(|x| x.key == key && x.message.contains(text));
        let f = findings(
            "[lan]\nnetworks = [\"10.0.0.0/24\"]\n[proxy]\ntrusted = [\"10.0.0.5\"]\nxclient = true\n",
        );
        assert!(has(&f, "lan.networks", "trusted proxy's own address"), "{f:?}");
        let f = findings(
            "[lan]\nnetworks = [\"192.168.1.0/24\"]\n[proxy]\ntrusted = [\"10.0.0.5\"]\nxclient = true\n",
        );
        assert!(!has(&f, "lan.networks", "trusted proxy"), "{f:?}");

        let docker = "[lan]\nnetworks = [\"192.168.1.0/24\", \"172.17.0.0/16\"]\n";
        assert!(has(&findings(docker), "lan.networks", "172.17.0.0/16"));
        let named = format!("{docker}[proxy]\ntrusted = [\"172.17.0.1\"]\nheader = \"required\"\n");
        assert!(!has(&findings(&named), "lan.networks", "container gateway"));
        assert!(!has(
            &findings("[lan]\nnetworks = [\"192.168.1.0/24\"]\n"),
            "lan.networks",
            "container"
        ));

        let wide = findings("[proxy]\ntrusted = [\"10.0.0.0/16\"]\nheader = \"optional\"\n");
        assert!(has(&wide, "proxy.trusted", "/16"), "{wide:?}");
        let narrow = findings("[proxy]\ntrusted = [\"10.0.0.0/24\"]\nheader = \"optional\"\n");
        assert!(!narrow.iter().any(|x| x.key == "proxy.trusted"), "{narrow:?}");
    }

    #[test]
    fn auth_without_tls_is_named_and_require_tls_without_a_certificate_is_a_warning() {
        let users = "[auth]\nusers = [{ name = \"carol\", password = \"x\" }]\n";
        let has =
            |f: &[Finding], key: &str, text: &str| f.iter().any(|x| x.key == key && x.message.contains(text));
        assert!(has(&findings(users), "auth.users", "without TLS"));
        let tls = format!("{users}[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n");
        let f = findings(&tls);
        assert!(!has(&f, "auth.users", "without TLS"), "{f:?}");
        assert!(!f.iter().any(|x| x.key == "auth.require_tls"), "{f:?}");
        let off = tls.replacen("[auth]\n", "[auth]\nrequire_tls = false\n", 1);
        assert!(has(&findings(&off), "auth.users", "without TLS"));
        let no_cert = users.replacen("[auth]\n", "[auth]\nrequire_tls = true\n", 1);
        assert!(has(
            &findings(&no_cert),
            "auth.require_tls",
            "nobody can authenticate"
        ));
    }

    #[test]
    fn no_mailboxes_list_is_a_warning_about_folders() {
        let f = findings("[domains]\nlocal = [\"example.com\"]\nmax_mailboxes = 50\n");
        let w: Vec<_> = f
            .iter()
            .filter(|x| x.key == "domains.mailboxes" && x.severity == Severity::Warning)
            .collect();
        assert_eq!(w.len(), 1, "{f:?}");
        assert!(w[0].message.contains("up to 50 mailbox folders"), "{w:?}");
        let f = findings(
            "[domains]\nlocal = [\"example.com\"]\nmailboxes = [\"a@example.com\", \"b@example.com\"]\nmax_mailboxes = 1\n",
        );
        assert!(f.iter().any(|x| x.key == "domains.max_mailboxes"), "{f:?}");
    }

    #[test]
    fn a_safe_config_has_no_errors_or_warnings() {
        let f = findings(
            "hostname = \"mail.example.com\"\nown_addresses = [\"198.51.100.25\"]\n[domains]\nlocal = [\"example.com\"]\nmailboxes = [\"alice@example.com\"]\n[lan]\nnetworks = [\"192.168.1.0/24\"]\n",
        );
        assert!(f.iter().all(|x| x.severity == Severity::Info), "{f:?}");
    }
}
