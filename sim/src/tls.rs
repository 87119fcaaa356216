//! TLS in the simulation, with every random draw taken from the seed.
//!
//! A handshake is made of random numbers: each side's hello random, the
//! TLS 1.3 legacy session id, each side's ephemeral key. Drawn from the
//! operating system, they would make every STARTTLS session differ between
//! two runs of a seed, and the trace hash (which covers the bytes clients
//! send) with it. So the simulation hands rustls a `CryptoProvider` of its
//! own: ring's cipher suites and signature verification, but the random
//! source and the key exchange draw from a splitmix stream of the seed, and
//! the clock is the simulation's. That randomness is not secret, which is
//! fine for a simulation and would be fatal anywhere else: this module is
//! for the simulation only.
//!
//! Why the key exchange is our own: ring's `agreement` and x25519-dalek's
//! `EphemeralSecret` take their randomness from a generator they choose
//! (ring's `SecureRandom` is sealed), so a seeded secret is an x25519-dalek
//! `StaticSecret` built from seeded bytes, used once.
//!
//! Certificates are Ed25519 (ring's signatures are deterministic for it),
//! self-signed by rcgen with a fixed serial and validity, from a key whose
//! bytes come from the seed and the host's name: the same certificate bytes
//! for a seed, on every run. Clients pin the certificates of the world
//! rather than build a chain: the simulation tests the relay, not PKI.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use relayguard_node::tls::Verifier;
use rustls::client::Resumption;
use rustls::crypto::{
    ActiveKeyExchange, CryptoProvider, GetRandomFailed, SecureRandom, SharedSecret, SupportedKxGroup,
    ring as ring_provider,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::NoServerSessionStorage;
use rustls::time_provider::TimeProvider;
use rustls::{ClientConfig, NamedGroup, PeerMisbehaved, ServerConfig};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::options::EPOCH;
use crate::rng::{FNV0, Rng, fnv};

/// Mixed into a TLS stream's seed, so that it never replays the draws of
/// the swarm or of an actor made from the same number.
const TLS_SALT: u64 = 0x7d15_5eed_0f7a_a5e1;

/// The certificates' validity: fixed, and wide around the simulation's
/// epoch (2025-11-24) so that no run reaches either end.
const NOT_BEFORE: (i32, u8, u8) = (2020, 1, 1);
const NOT_AFTER: (i32, u8, u8) = (2040, 1, 1);

/// rustls's random source, from the seed.
#[derive(Debug)]
struct SeededRandom(Mutex<Rng>);

impl SecureRandom for SeededRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        let mut r = self.0.lock().map_err(|_| GetRandomFailed)?;
        for chunk in buf.chunks_mut(8) {
            let word = r.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Ok(())
    }
}

/// X25519 whose ephemeral secret is drawn from the same seeded source.
#[derive(Debug)]
struct SeededX25519(&'static SeededRandom);

impl SupportedKxGroup for SeededX25519 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, rustls::Error> {
        let mut secret = [0u8; 32];
        self.0
            .fill(&mut secret)
            .map_err(|_| rustls::Error::FailedToGetRandomBytes)?;
        let secret = StaticSecret::from(secret);
        let public = PublicKey::from(&secret).to_bytes();
        Ok(Box::new(X25519Exchange { secret, public }))
    }
    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

struct X25519Exchange {
    secret: StaticSecret,
    public: [u8; 32],
}

impl ActiveKeyExchange for X25519Exchange {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, rustls::Error> {
        let peer: [u8; 32] = peer
            .try_into()
            .map_err(|_| rustls::Error::from(PeerMisbehaved::InvalidKeyShare))?;
        let shared = self.secret.diffie_hellman(&PublicKey::from(peer));
        // A low-order peer point gives an all-zero secret: refuse it, as
        // ring does.
        if !shared.was_contributory() {
            return Err(PeerMisbehaved::InvalidKeyShare.into());
        }
        Ok(SharedSecret::from(&shared.as_bytes()[..]))
    }
    fn pub_key(&self) -> &[u8] {
        &self.public
    }
    fn group(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

/// The simulation's wall clock for rustls: the fixed epoch plus the
/// simulated time, never the machine's.
#[derive(Debug)]
struct SimClock;

impl TimeProvider for SimClock {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(EPOCH + crate::world::elapsed()))
    }
}

/// A provider drawing from `stream` (a seed, or a number derived from one).
///
/// rustls holds the random source and the key-exchange group as
/// `&'static`, so each provider leaks those two small values (a few words):
/// one per TLS endpoint of a run, bounded by the run's hosts.
fn provider(stream: u64) -> Arc<CryptoProvider> {
    let random: &'static SeededRandom =
        Box::leak(Box::new(SeededRandom(Mutex::new(Rng::new(stream ^ TLS_SALT)))));
    let kx: &'static SeededX25519 = Box::leak(Box::new(SeededX25519(random)));
    let ring = ring_provider::default_provider();
    Arc::new(CryptoProvider {
        cipher_suites: ring_provider::DEFAULT_CIPHER_SUITES.to_vec(),
        kx_groups: vec![kx],
        signature_verification_algorithms: ring.signature_verification_algorithms,
        secure_random: random,
        key_provider: ring.key_provider,
    })
}

/// A host's certificate and key, the same bytes for a seed and a name.
#[derive(Debug)]
pub(crate) struct Identity {
    pub(crate) cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Identity {
        Identity {
            cert: self.cert.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    pub(crate) fn new(seed: u64, name: &str) -> Identity {
        let mut r = Rng::new(fnv(fnv(FNV0, &seed.to_le_bytes()), name.as_bytes()) ^ TLS_SALT);
        // PKCS#8 v1 of an Ed25519 key (RFC 8410): a fixed prefix, then the
        // 32-byte seed of the key.
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
        ];
        for _ in 0..4 {
            der.extend_from_slice(&r.next_u64().to_le_bytes());
        }
        let key = PrivatePkcs8KeyDer::from(der);
        let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&key, &rcgen::PKCS_ED25519)
            .expect("a well-formed Ed25519 key");
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).expect("a valid DNS name");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.serial_number = Some(rcgen::SerialNumber::from(1u64));
        params.not_before = rcgen::date_time_ymd(NOT_BEFORE.0, NOT_BEFORE.1, NOT_BEFORE.2);
        params.not_after = rcgen::date_time_ymd(NOT_AFTER.0, NOT_AFTER.1, NOT_AFTER.2);
        let cert = params.self_signed(&pair).expect("rcgen signs with Ed25519");
        Identity {
            cert: cert.der().clone(),
            key,
        }
    }
}

/// A run's TLS: every server's certificate (the relay's and each
/// exchanger's, made once per run from the seed) and the seeded configs
/// built on them. Every client pins all of the world's certificates.
#[derive(Clone, Debug)]
pub(crate) struct SimTls {
    seed: u64,
    relay: Identity,
    exchangers: BTreeMap<String, Identity>,
    /// The domains whose exchanger offers STARTTLS.
    offering: BTreeSet<String>,
    /// Relay configs made so far: each (re)start of the relay draws from a
    /// stream of its own.
    relay_starts: u64,
}

/// The name clients send as SNI, whatever the relay's hostname: clients
/// pin certificates, so the name is not what they check.
pub(crate) const RELAY_NAME: &str = "relay.sim.example";

impl SimTls {
    pub(crate) fn new<'a>(
        seed: u64,
        exchangers: impl Iterator<Item = &'a String>,
        offering: BTreeSet<String>,
    ) -> SimTls {
        SimTls {
            seed,
            relay: Identity::new(seed, RELAY_NAME),
            exchangers: exchangers
                .map(|d| (d.clone(), Identity::new(seed, &format!("mx.{d}"))))
                .collect(),
            offering,
            relay_starts: 0,
        }
    }

    fn stream(&self, what: &[u8], n: u64) -> u64 {
        fnv(fnv(fnv(FNV0, &self.seed.to_le_bytes()), what), &n.to_le_bytes())
    }

    /// The relay's TLS for its next start: the server side if it offers
    /// STARTTLS, and the client side of its deliveries. Each start draws
    /// from streams of its own.
    pub(crate) fn relay_start(&mut self, offer: bool) -> (Option<Arc<ServerConfig>>, Arc<ClientConfig>) {
        self.relay_starts += 1;
        let n = self.relay_starts;
        let server = offer.then(|| server_config(self.stream(b"relay", n), &self.relay));
        (
            server,
            client_config(self.stream(b"relay client", n), self.pinned()),
        )
    }

    /// An exchanger's server config; `None` for one that does not offer
    /// STARTTLS.
    pub(crate) fn exchanger_server(&self, domain: &str) -> Option<Arc<ServerConfig>> {
        if !self.offering.contains(domain) {
            return None;
        }
        let id = self.exchangers.get(domain)?;
        Some(server_config(self.stream(domain.as_bytes(), 0), id))
    }

    /// An actor's client config, from the actor's own stream, so that
    /// removing another actor (the shrinker) leaves its draws alone.
    pub(crate) fn actor_client(&self, actor_stream: u64) -> Arc<ClientConfig> {
        client_config(self.stream(b"actor", actor_stream), self.pinned())
    }

    fn pinned(&self) -> Vec<CertificateDer<'static>> {
        std::iter::once(&self.relay)
            .chain(self.exchangers.values())
            .map(|i| i.cert.clone())
            .collect()
    }
}

/// A server's TLS: the seeded provider, `identity`'s certificate, no
/// session tickets and no resumption cache (either would carry state, and
/// draws, from one session into the next).
pub(crate) fn server_config(stream: u64, identity: &Identity) -> Arc<ServerConfig> {
    let mut c = ServerConfig::builder_with_details(provider(stream), Arc::new(SimClock))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![identity.cert.clone()],
            PrivateKeyDer::Pkcs8(identity.key.clone_key()),
        )
        .expect("an Ed25519 key matching its certificate");
    c.send_tls13_tickets = 0;
    c.session_storage = Arc::new(NoServerSessionStorage {});
    Arc::new(c)
}

/// A client's TLS: the seeded provider, trusting exactly `pinned`, no
/// resumption.
pub(crate) fn client_config(stream: u64, pinned: Vec<CertificateDer<'static>>) -> Arc<ClientConfig> {
    let provider = provider(stream);
    let verifier = Arc::new(Verifier::pinned(
        pinned,
        provider.signature_verification_algorithms,
    ));
    let mut c = ClientConfig::builder_with_details(provider, Arc::new(SimClock))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    c.resumption = Resumption::disabled();
    Arc::new(c)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::pin::Pin;
    use std::rc::Rc;
    use std::task::{Context, Poll};
    use std::time::SystemTime;

    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

    use super::*;

    const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    /// Records every octet read or written on the client's socket, each
    /// side marked, in the order they passed.
    struct Tap<S> {
        inner: S,
        wire: Rc<RefCell<Vec<u8>>>,
    }

    impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let before = buf.filled().len();
            let r = Pin::new(&mut self.inner).poll_read(cx, buf);
            let got = buf.filled()[before..].to_vec();
            if !got.is_empty() {
                let mut w = self.wire.borrow_mut();
                w.push(b'<');
                w.extend_from_slice(&got);
            }
            r
        }
    }

    impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let r = Pin::new(&mut self.inner).poll_write(cx, buf);
            if let Poll::Ready(Ok(n)) = r {
                let mut w = self.wire.borrow_mut();
                w.push(b'>');
                w.extend_from_slice(&buf[..n]);
            }
            r
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }
        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// One handshake and one exchange of data over turmoil's TCP, and the
    /// octets on the client's socket, both ways.
    fn wire(seed: u64) -> Vec<u8> {
        let mut sim = turmoil::Builder::new()
            .epoch(SystemTime::UNIX_EPOCH + EPOCH)
            .rng_seed(seed)
            .build();
        let server_id = Identity::new(seed, "relay.sim.example");
        let pinned = vec![server_id.cert.clone()];
        sim.host(SERVER, move || {
            let config = server_config(seed, &server_id);
            async move {
                let listener = turmoil::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, 25)).await?;
                let (socket, _) = listener.accept().await?;
                let mut tls = tokio_rustls::TlsAcceptor::from(config).accept(socket).await?;
                let mut line = [0u8; 5];
                tls.read_exact(&mut line).await?;
                tls.write_all(b"pong\n").await?;
                tls.shutdown().await?;
                Ok(())
            }
        });
        let wire = Rc::new(RefCell::new(Vec::new()));
        let tap = wire.clone();
        sim.client(CLIENT, async move {
            let socket = turmoil::net::TcpStream::connect(SocketAddr::new(IpAddr::V4(SERVER), 25)).await?;
            let socket = Tap {
                inner: socket,
                wire: tap,
            };
            let config = client_config(seed.wrapping_add(1), pinned);
            let name = ServerName::try_from("relay.sim.example").expect("a DNS name");
            let mut tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, socket)
                .await?;
            tls.write_all(b"ping\n").await?;
            let mut reply = Vec::new();
            tls.read_to_end(&mut reply).await?;
            if reply != b"pong\n" {
                return Err(format!("the server sent {reply:?}").into());
            }
            Ok(())
        });
        sim.run().expect("the handshake completes");
        wire.take()
    }

    #[test]
    fn a_seed_gives_the_same_handshake_bytes_and_another_seed_others() {
        let a = wire(7);
        // A client hello, a server flight, application data: far more than
        // a few octets, so that equality says something.
        assert!(a.len() > 500, "only {} octets recorded", a.len());
        assert_eq!(a, wire(7), "a seed's handshake differed between two runs");
        let b = wire(8);
        assert_ne!(a, b, "two seeds gave the same handshake");
    }

    #[test]
    fn a_certificate_is_the_same_for_a_seed_and_name() {
        let a = Identity::new(3, "relay.sim.example");
        assert_eq!(a.cert, Identity::new(3, "relay.sim.example").cert);
        assert_ne!(a.cert, Identity::new(4, "relay.sim.example").cert);
        assert_ne!(a.cert, Identity::new(3, "mx.foreign.example").cert);
    }

    #[test]
    fn a_certificate_not_pinned_is_refused() {
        let mut sim = turmoil::Builder::new().build();
        let server_id = Identity::new(1, "relay.sim.example");
        let other = Identity::new(2, "relay.sim.example");
        sim.host(SERVER, move || {
            let config = server_config(1, &server_id);
            async move {
                let listener = turmoil::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, 25)).await?;
                let (socket, _) = listener.accept().await?;
                let _ = tokio_rustls::TlsAcceptor::from(config).accept(socket).await;
                Ok(())
            }
        });
        sim.client(CLIENT, async move {
            let socket = turmoil::net::TcpStream::connect(SocketAddr::new(IpAddr::V4(SERVER), 25)).await?;
            let config = client_config(2, vec![other.cert]);
            let name = ServerName::try_from("relay.sim.example").expect("a DNS name");
            let r = tokio_rustls::TlsConnector::from(config)
                .connect(name, socket)
                .await;
            match r {
                Ok(_) => Err("a certificate outside the pins was accepted".into()),
                Err(_) => Ok(()),
            }
        });
        sim.run().expect("the run ends");
    }
}
