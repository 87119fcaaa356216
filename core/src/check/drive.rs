//! A minimal in-memory driver for a [`Session`]: feeds chunks, stores every
//! message at once, and collects what the client would see. Tests, benches,
//! replay and the fuzz targets share it so that they drive the session the
//! same way.

use std::net::IpAddr;
use std::sync::Arc;

use super::oracle::{ConfigView, Oracle, Verdict};
use crate::Now;
use crate::policy::Policy;
use crate::session::{Message, Output, Peer, Session};

/// What one session produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Run {
    /// Every byte sent to the client.
    pub sent: Vec<u8>,
    /// Every message handed out for storage.
    pub messages: Vec<Message>,
    /// The session asked for the connection to be closed.
    pub closed: bool,
    /// Handshakes performed ([`Driver::handshake`]).
    pub handshakes: usize,
}

/// Drives one session over in-memory input, with the wire oracle watching.
pub struct Driver {
    /// The session being driven.
    pub session: Session,
    /// What it produced so far.
    pub run: Run,
    /// The wire oracle, fed every byte both ways and every message handed
    /// on.
    pub oracle: Oracle,
    stored: u64,
    now: Now,
    /// The session sent [`Output::StartTls`] and waits for the handshake.
    tls_asked: bool,
}

impl Driver {
    /// Opens a session for a client at `ip`, at time zero, and collects its
    /// greeting. Time stands still but for [`Driver::expire`]; every message
    /// is stored at once, with the ids `M1`, `M2`, ….
    pub fn new(policy: Arc<Policy>, ip: IpAddr) -> Driver {
        let view = Arc::new(ConfigView::new(policy.config()));
        Driver::with_view(policy, ip, view)
    }

    /// As [`Driver::new`], the oracle reading the configuration through
    /// `view`, which must be [`ConfigView::new`] of the policy's
    /// configuration: built once for many sessions (the fuzz targets).
    pub fn with_view(policy: Arc<Policy>, ip: IpAddr, view: Arc<ConfigView>) -> Driver {
        let now = Now::ZERO;
        let oracle = Oracle::with_view(view, ip);
        let mut d = Driver {
            session: Session::new(policy, Peer::direct(ip), now),
            run: Run::default(),
            oracle,
            stored: 0,
            now,
            tls_asked: false,
        };
        d.pump();
        d
    }

    /// Opens a session whose connection came from `socket` with a PROXY
    /// header naming `client`, as the node does after [`crate::proxy::front`]
    /// and [`crate::proxy::accept`]: the client is believed only if the
    /// policy trusts `socket` as a proxy; otherwise the session is the
    /// socket's own. The oracle judges with its own reading of the trust.
    /// The injected bug `trust-any-proxy-header` believes the header from
    /// anyone.
    pub fn proxied(policy: Arc<Policy>, client: IpAddr, socket: IpAddr) -> Driver {
        let now = Now::ZERO;
        let oracle = Oracle::with_socket(policy.config(), client, socket);
        let believed = matches!(
            crate::proxy::front(&policy, socket),
            crate::proxy::Front::ExpectHeader
        ) || policy.bugs().has(crate::check::Bug::TrustAnyProxyHeader);
        let peer = if believed {
            Peer {
                ip: client,
                via: Some(socket),
            }
        } else {
            Peer::direct(socket)
        };
        let mut d = Driver {
            session: Session::new(policy, peer, now),
            run: Run::default(),
            oracle,
            stored: 0,
            now,
            tls_asked: false,
        };
        d.pump();
        d
    }

    /// This driver can do TLS: the session offers STARTTLS
    /// ([`Session::offer_tls`]). Call it before the first input.
    pub fn offer_tls(&mut self) {
        self.session.offer_tls();
    }

    /// Whether the session asked for a TLS handshake that has not been
    /// performed yet.
    pub fn tls_asked(&self) -> bool {
        self.tls_asked
    }

    /// Performs the TLS handshake the session asked for with
    /// [`Output::StartTls`]: in memory there is nothing to encrypt, so it
    /// tells the session and the oracle that it is done and collects what
    /// follows. False (and nothing happens) when no handshake was asked.
    pub fn handshake(&mut self) -> bool {
        if !std::mem::take(&mut self.tls_asked) {
            return false;
        }
        self.run.handshakes += 1;
        self.session.tls_established(self.now);
        self.oracle.tls_established();
        self.pump();
        true
    }

    /// The session is authenticated out of band (transcripts' `@auth`).
    pub fn authenticate(&mut self, user: &str) {
        self.session.set_authenticated(user);
        self.oracle.authenticated(user);
    }

    /// Feeds one chunk, as one `handle_input` call, and collects the outputs.
    pub fn feed(&mut self, bytes: &[u8]) {
        if !self.run.closed {
            self.oracle.client_bytes(bytes);
        }
        self.session.handle_input(self.now, bytes);
        self.pump();
    }

    /// The oracle's verdict on the whole session.
    pub fn finish(self) -> (Run, Verdict) {
        (self.run, self.oracle.finish())
    }

    /// Advances time past the session's deadline, if it has one.
    pub fn expire(&mut self) {
        if let Some(t) = self.session.poll_timeout() {
            self.now = t;
            self.session.handle_timeout(t);
            self.pump();
        }
    }

    fn pump(&mut self) {
        while let Some(o) = self.session.poll_output() {
            match o {
                Output::Send(b) => {
                    self.oracle.server_bytes(&b);
                    self.run.sent.extend_from_slice(&b);
                }
                Output::Message(m) => {
                    self.oracle.handed_on(&m);
                    self.run.messages.push(*m);
                    self.stored += 1;
                    self.session
                        .message_stored(self.now, Ok(format!("M{}", self.stored)));
                }
                Output::Close => self.run.closed = true,
                Output::StartTls => self.tls_asked = true,
                // Only a session that streams bodies hands these out; this
                // driver keeps bodies whole, as the oracle judges them.
                Output::Body(_) | Output::DropBody => {}
            }
        }
    }
}

/// Runs a whole session: each chunk is one `handle_input` call.
pub fn run(policy: Arc<Policy>, ip: IpAddr, chunks: &[&[u8]]) -> Run {
    run_checked(policy, ip, chunks).0
}

/// Runs a whole session and returns the oracle's verdict too.
pub fn run_checked(policy: Arc<Policy>, ip: IpAddr, chunks: &[&[u8]]) -> (Run, Verdict) {
    let mut d = Driver::new(policy, ip);
    for c in chunks {
        d.feed(c);
    }
    d.finish()
}
