//! The foreign mail exchangers: where relayed mail ends up.
//!
//! Each is core's own session with a policy of its own (its domain local,
//! the relay as its LAN), so that it speaks real SMTP to the relay's
//! delivery, and every message it accepts is an arrival for the delivery
//! checker. It does not judge the relay; it only records.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use relayguard_core::Config;
use relayguard_core::Policy;
use relayguard_core::{Message, Peer, Session};
use relayguard_node::{Clock, ServerHooks, StoreError};
use tokio::io::AsyncWriteExt;

use crate::options::{PORT, RELAY};
use crate::world::Shared;

/// An exchanger's own policy: its domain local, the relay as its LAN.
pub(crate) fn policy(domain: &str) -> Arc<Policy> {
    let mut config = Config {
        hostname: format!("mx.{domain}"),
        ..Config::default()
    };
    config.domains.local = vec![domain.to_string()];
    config.lan.networks = vec![RELAY.to_string()];
    if domain == "defunct.example" {
        config.domains.mailboxes = Some(vec!["someone@defunct.example".into()]);
    }
    Arc::new(Policy::new(config).expect("an exchanger's config is valid"))
}

/// A foreign mail exchanger: the core session with `policy`, recording
/// every message; answering 421 while it is failing. A `plain` one does
/// not offer CHUNKING, so that the relay sends it DATA. Some offer
/// STARTTLS (`tls`), the others refuse it (502), so that the relay's
/// deliveries meet both. The policy and TLS are built once for the run:
/// the exchanger sleeps and wakes (`naps.rs`), and its handshakes go on
/// drawing from one stream across its naps.
pub(crate) async fn exchanger(
    world: Shared,
    domain: String,
    me: IpAddr,
    plain: bool,
    policy: Arc<Policy>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> turmoil::Result {
    let listener = turmoil::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, PORT)).await?;
    crate::naps::listening(&world, me);
    loop {
        let (mut stream, peer) = listener.accept().await?;
        let world = world.clone();
        let policy = policy.clone();
        let domain = domain.clone();
        let tls = tls.clone();
        let busy = crate::naps::busy(&world, me);
        tokio::task::spawn_local(async move {
            let _busy = busy;
            if world.borrow().failing.contains(&me) {
                let _ = stream.write_all(b"421 4.3.2 try again later\r\n").await;
                return;
            }
            let clock = Clock::start();
            let mut s = Session::new(policy, Peer::direct(peer.ip()), clock.now());
            if tls.is_some() {
                s.offer_tls();
            }
            if plain {
                s.refuse_chunking();
            }
            let mut hooks = Arrivals {
                world,
                domain,
                tls,
                plain,
            };
            relayguard_node::drive_server(stream, s, &clock, &mut hooks).await;
        });
    }
}

/// Every message the exchanger accepts arrives, and is acked at once.
struct Arrivals {
    world: Shared,
    domain: String,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// No CHUNKING offered: what arrives came by DATA, else by BDAT (the
    /// relay's client uses BDAT wherever it is offered).
    plain: bool,
}

impl ServerHooks for Arrivals {
    async fn store(&mut self, m: Message) -> Result<String, StoreError> {
        let rcpts = m
            .recipients
            .iter()
            .map(|r| r.path.mailbox.as_ref().map_or(String::new(), |m| m.to_string()))
            .collect();
        let mut w = self.world.borrow_mut();
        w.fired(if self.plain {
            "relayed by DATA"
        } else {
            "relayed by BDAT"
        });
        w.arrive(
            format!("exchanger {}", self.domain),
            rcpts,
            m.from.is_null(),
            &m.body,
        );
        Ok("x".into())
    }
    fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.clone()
    }
    fn tls_established(&mut self, _injected: u64) {
        let mut w = self.world.borrow_mut();
        w.fired("starttls at an exchanger");
        w.event(&format!("exchanger {} tls", self.domain));
    }
}
