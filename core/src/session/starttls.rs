//! STARTTLS (RFC 3207) for the server session: the command, the discard of
//! what came after it in plain text, and the reset once TLS is up.
//!
//! The session does no TLS itself; the driver does the handshake when it
//! reads [`Output::StartTls`]. What the session owns is the rule that makes
//! STARTTLS safe: every octet that arrived after the `STARTTLS` line and
//! before the handshake was sent in plain text, where anyone on the path
//! could have put it, so it is thrown away unread, however the input was
//! split (the command injection of CVE-2011-0411). Those octets are counted
//! ([`Session::injected_octets`]) for the log and the checkers.

use super::{Output, Session, State};
use crate::Now;
use crate::check::Bug;
use crate::reply::Enhanced;

impl Session {
    /// The driver can do TLS on this connection: EHLO advertises
    /// `STARTTLS` and the command is served. Call it before the first
    /// input; without it STARTTLS hears `502 5.5.1`.
    pub fn offer_tls(&mut self) {
        self.tls_offered = true;
    }

    /// Whether the connection runs over TLS
    /// ([`Session::tls_established`] was called).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Octets the client sent after its `STARTTLS` line and before the
    /// handshake: discarded unread. A conforming client sends none; any
    /// are a sign of command injection (or a broken client).
    pub fn injected_octets(&self) -> u64 {
        self.injected
    }

    /// The driver finished the TLS handshake that [`Output::StartTls`]
    /// asked for, at `now`. The session starts over as RFC 3207 §4.2
    /// says: no HELO/EHLO, no transaction, no AUTH (nor an `@auth` user),
    /// and nothing of what was received before; EHLO no longer offers
    /// STARTTLS. Ignored unless the session is waiting for a handshake.
    pub fn tls_established(&mut self, now: Now) {
        if !matches!(self.state, State::StartTls) {
            return;
        }
        self.tls = true;
        self.state = State::Command;
        self.helo = None;
        self.esmtp = false;
        self.user = None;
        self.tx = None;
        if !self.policy.bugs().has(Bug::KeepBufferAfterStarttls) {
            self.input = Vec::new();
        }
        self.last_now = now;
        self.line_started = None;
        let lines = self.lines;
        // Empty unless the injected bug kept the plain-text octets.
        self.process_buffered();
        self.after_input(now, lines);
    }

    /// `STARTTLS`, without arguments (the parser refuses any with
    /// `501 5.5.4`).
    pub(super) fn starttls(&mut self) {
        if self.tls {
            return self.error(503, Enhanced(5, 5, 1), "Error: TLS already active");
        }
        if !self.tls_offered {
            return self.error(502, Enhanced(5, 5, 1), "Error: STARTTLS not available");
        }
        if !self.esmtp {
            return self.error(503, Enhanced(5, 5, 1), "Error: send EHLO first");
        }
        if self.tx.is_some() {
            return self.error(
                503,
                Enhanced(5, 5, 1),
                "Error: STARTTLS not allowed during a mail transaction",
            );
        }
        self.reply(220, Enhanced(2, 0, 0), "Ready to start TLS");
        self.state = State::StartTls;
        self.out.push_back(Output::StartTls);
    }

    /// Input while the handshake is awaited: `held` octets that the client
    /// sent after `STARTTLS` in plain text. Returns how many were taken
    /// (all of them: discarded and counted). The injected bug
    /// `keep-buffer-after-starttls` takes none, so that they stay held and
    /// run once TLS is up, as in CVE-2011-0411.
    pub(super) fn discard_injected(&mut self, held: usize) -> usize {
        if self.policy.bugs().has(Bug::KeepBufferAfterStarttls) {
            // BUG keep-buffer-after-starttls: plain-text octets run after the handshake.
            return 0;
        }
        self.injected += held as u64;
        held
    }

    /// The EHLO keyword, until TLS is up and only where the driver can do it.
    pub(super) fn advertise_starttls(&self, text: &mut String) {
        if self.tls_offered && !self.tls {
            text.push_str("250-STARTTLS\r\n");
        }
    }

    /// Whether AUTH must wait for TLS: `auth.require_tls` (see
    /// [`Config::auth_requires_tls`](crate::Config::auth_requires_tls))
    /// and the connection is not yet TLS.
    pub(super) fn auth_needs_tls(&self) -> bool {
        !self.tls && self.policy.config().auth_requires_tls()
    }
}
