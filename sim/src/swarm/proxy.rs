//! Whether a seed's outsiders reach the relay through a proxy host, and how
//! that proxy names them (issue 15).
//!
//! The draw has a stream of its own (the seed mixed with [`PROXY_SALT`]),
//! so that adding the proxy moved no other draw: a seed's configuration,
//! actors and faults are what they were, and only who connects where
//! changes.

use std::net::IpAddr;

use std::net::SocketAddr;

use relayguard_core::proxy::{encode_v1, encode_v2};
use relayguard_core::{Config, Header, Proxy};

use super::Task;
use super::attacks::lan_address;
use crate::options::{DOCKER_GATEWAY, DOCKER_NETWORK, PORT, PROXY_HOST, PROXY_SALT, RELAY};
use crate::rng::Rng;

/// Which worlds a campaign draws.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scenario {
    /// The default campaign: seeds without a proxy, with a PROXY protocol
    /// proxy and with an XCLIENT proxy, every one correctly configured.
    #[default]
    Default,
    /// Every seed's proxy is set up the Docker way: it forwards without a
    /// header from an address inside the LAN. The relay is open; a seed of
    /// this scenario must fail, or the checkers cannot see the mistake.
    MisconfiguredProxy,
    /// Every seed behind a correctly configured PROXY protocol proxy (v1 or
    /// v2): the control for [`Scenario::MisconfiguredProxy`], the same
    /// worlds with the proxy set up right.
    ProxyProtocol,
}

/// How a seed's outsiders reach the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proxying {
    /// Every actor connects to the relay itself.
    Direct,
    /// Through a proxy that sends a PROXY protocol header of this version
    /// (1 or 2); the relay requires one from it and takes no connection
    /// from anyone else.
    Header(u8),
    /// Through a proxy that names the client with XCLIENT, and drops a
    /// client's own XCLIENT line as a real one never passes it on.
    Xclient,
    /// Docker's userland proxy: forwards the bytes as they are, from an
    /// address inside the LAN, and the relay is not told.
    Misconfigured,
}

impl Proxying {
    /// The proxy host's address, if there is one.
    pub fn host(self) -> Option<IpAddr> {
        match self {
            Proxying::Direct => None,
            Proxying::Header(_) | Proxying::Xclient => Some(PROXY_HOST.into()),
            Proxying::Misconfigured => Some(DOCKER_GATEWAY.into()),
        }
    }
}

/// Draws the seed's proxying and sets the relay's `[proxy]` to go with it.
/// `Direct` leaves the configuration as `config::draw` made it (a trusted
/// proxy no host has, so that forged headers come from untrusted
/// addresses). The stream is handed back for [`lan_via_proxy`].
pub(crate) fn draw(seed: u64, scenario: Scenario, config: &mut Config) -> (Proxying, Rng) {
    let mut r = Rng::new(seed ^ PROXY_SALT);
    // One draw whatever the scenario, so that the rest of this stream
    // (who forges a header) is the same in each: the scenarios differ in
    // the proxy alone.
    let pick = r.below(6);
    let proxying = match scenario {
        Scenario::MisconfiguredProxy => Proxying::Misconfigured,
        Scenario::ProxyProtocol => Proxying::Header(1 + (pick % 2) as u8),
        Scenario::Default => match pick {
            0 => Proxying::Header(1),
            1 => Proxying::Header(2),
            2 => Proxying::Xclient,
            _ => Proxying::Direct,
        },
    };
    match proxying {
        Proxying::Direct => {}
        Proxying::Header(_) => {
            // XCLIENT stays on: a client behind the header proxy that sends
            // one must still be refused (its bytes are not the proxy's).
            config.proxy = Proxy {
                trusted: vec![PROXY_HOST.to_string()],
                header: Header::Required,
                xclient: true,
            };
        }
        Proxying::Xclient => {
            config.proxy = Proxy {
                trusted: vec![PROXY_HOST.to_string()],
                header: Header::Off,
                xclient: true,
            };
        }
        Proxying::Misconfigured => {
            // The Docker bridge is put in the LAN so that the containers
            // beside the relay may send, and no proxy is configured.
            config.lan.networks.push(DOCKER_NETWORK.to_string());
            config.proxy = Proxy::default();
        }
    }
    (proxying, r)
}

/// Whether a LAN host goes through the proxy: always through a header
/// proxy (the relay takes no direct connection), on XCLIENT seeds one in
/// two, and always through the misconfigured one (Docker publishes the
/// port on the host; every connection goes through its proxy).
pub(crate) fn lan_via_proxy(proxying: Proxying, r: &mut Rng) -> bool {
    match proxying {
        Proxying::Direct => false,
        Proxying::Header(_) | Proxying::Misconfigured => true,
        Proxying::Xclient => r.chance(50),
    }
}

/// One generated attack in four goes straight to the relay with a forged
/// PROXY header (v1 or v2) naming a LAN address, sent before the greeting:
/// refused by a relay that takes headers from its proxies only (with a
/// header required, before a byte is read), believed by one with the
/// injected bug `trust-any-proxy-header`.
pub(crate) fn forge_headers(config: &Config, tasks: &mut [Task], r: &mut Rng) {
    let Some(lan) = lan_address(config) else {
        return;
    };
    let source = SocketAddr::new(lan.parse().expect("a LAN address"), 40001);
    let relay = SocketAddr::new(RELAY.into(), PORT);
    for t in tasks {
        if let Task::Raw { forged, .. } = t {
            if r.chance(25) {
                *forged = Some(if r.chance(50) {
                    encode_v1(source, relay)
                } else {
                    encode_v2(source, relay, false)
                });
            }
        }
    }
}
