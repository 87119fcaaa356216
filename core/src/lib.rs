//! relayguard-core: the SMTP protocol and the relay policy as pure state
//! machines.
//!
//! Nothing here does I/O or reads a clock: bytes and the current time come in
//! as arguments, replies and messages go out as values. That is what lets the
//! same code run in the simulation, under the fuzzers, in transcript replay
//! and in the real server, and lets every run be replayed exactly.
//!
//! # Driving a Session
//!
//! The driver owns the socket, the clock and the disk; the [`Session`] owns
//! every decision. Bytes go in with [`Session::handle_input`], in any split;
//! what to do comes out of [`Session::poll_output`]; a message is answered
//! `250` only after the driver reports it stored.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use relayguard_core::{Config, Output, Peer, Policy, Session};
//!
//! let mut config = Config::default();
//! config.domains.local = vec!["example.com".into()];
//! let policy = Arc::new(Policy::new(config).expect("a valid configuration"));
//! let peer = Peer::direct("203.0.113.7".parse().unwrap());
//! let mut now = Duration::ZERO;
//! let mut session = Session::new(policy, peer, now);
//!
//! let mut wire = Vec::new();
//! let mut stored = 0;
//! let script: [&[u8]; 5] = [
//!     b"EHLO client.example.org\r\n",
//!     b"MAIL FROM:<someone@example.org>\r\n",
//!     b"RCPT TO:<postmaster@example.com>\r\n",
//!     b"DATA\r\n",
//!     b"Subject: hi\r\n\r\nhello\r\n.\r\nQUIT\r\n",
//! ];
//! for bytes in script {
//!     now += Duration::from_millis(10);
//!     session.handle_input(now, bytes);
//!     while let Some(out) = session.poll_output() {
//!         match out {
//!             Output::Send(reply) => wire.extend_from_slice(&reply),
//!             // Write it durably first; only then may the client hear 250.
//!             Output::Message(_message) => {
//!                 stored += 1;
//!                 session.message_stored(now, Ok(format!("q{stored}")));
//!             }
//!             Output::Close => {}
//!             // Only after `session.offer_tls()`: do the handshake,
//!             // then call `session.tls_established(now)`.
//!             Output::StartTls => {}
//!             // Only after `session.stream_bodies()`: pieces of the body.
//!             Output::Body(_) | Output::DropBody => {}
//!         }
//!     }
//!     // A real driver also sleeps until `session.poll_timeout()` and then
//!     // calls `session.handle_timeout(now)`.
//! }
//! let wire = String::from_utf8(wire).unwrap();
//! assert!(wire.contains("250 2.0.0 Ok: queued as q1"), "{wire}");
//! assert!(session.is_closed());
//! ```

#![warn(missing_docs)]

mod address;
mod addrlist;
mod command;
mod config;
mod data;
mod foldkey;
mod lint;
mod netlist;
mod policy;
pub mod proxy;
mod reply;
mod session;

pub mod check;
pub mod client;

pub use address::{
    AddressError, Domain, MAX_DOMAIN, MAX_LOCAL, Mailbox, Path, Routing, RoutingKind, canonical_domain,
    parse_path, routing_of, split_mailbox, split_route,
};
pub use command::{
    Body, Command, MAX_LINE, MailParams, ParseError, PathArg, line_end, parse as parse_command,
};
pub use config::{
    Access, Allow, Auth, Config, ConfigError, Domains, Header, Invalid, Lan, Limits, Lists, Proxy, Relay,
    Tls, User, line_col,
};
pub use data::BODY_PIECE;
pub use lint::{Finding, Severity, lint};
pub use policy::{Context, Decision, Destination, Policy, Reason, Refusal};
pub use reply::{
    Enhanced, LineError, MAX_REPLY_LINE, Reply, ReplyReader, check_line, whole_reply_len, write_line,
};
pub use session::{
    MAX_PENDING_OUTPUT, MAX_PIPELINED, Message, NotStored, Output, Peer, Recipient, Session, StoreResult,
};

/// Time since the driver's epoch. The core never reads a clock: every
/// function that needs the time takes one of these.
pub type Now = std::time::Duration;
