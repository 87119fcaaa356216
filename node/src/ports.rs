//! The node's ports: everything that touches the world goes through these
//! traits, so that the simulation and the real server plug in their own.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};

use relayguard_core::Domain;
use relayguard_core::{Message, Recipient};
use tokio::io::{AsyncRead, AsyncWrite};

/// Sockets: listen, accept (with the peer's IP), connect.
pub trait Net: 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + 'static;
    type Listener: 'static;
    fn listen(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>>;
    fn accept(&self, listener: &Self::Listener) -> impl Future<Output = io::Result<(Self::Stream, IpAddr)>>;
    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>>;
}

/// A queued message: the message and the recipients still to be served.
/// In the node's memory the message's body is empty: the spool holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub message: Message,
    pub pending: Vec<Recipient>,
    /// Delivery rounds that ended with recipients left.
    pub attempts: u32,
}

impl Entry {
    pub fn new(message: Message) -> Entry {
        Entry {
            pending: message.recipients.clone(),
            message,
            attempts: 0,
        }
    }
}

/// Durable storage. `store` is durable once its future completes, and not
/// before: a crash while it runs loses the message (which was never acked).
///
/// `update` and `remove` say whether they reached the disk: the node keeps
/// the entry in memory either way, retries a failed `remove` until it
/// succeeds, and writes the entry again at its next round after a failed
/// `update`. What a failure costs is at most a second delivery after a
/// crash (the at-least-once window, docs/simulation.md), never a loss.
pub trait Spool: 'static {
    /// Takes the spool for this process: a second instance on the same
    /// spool must be refused here, before it recovers or delivers
    /// anything. The default takes nothing (a spool that locks when it is
    /// opened, as the real one does).
    fn lock(&self) -> impl Future<Output = Result<(), StoreError>> {
        async { Ok(()) }
    }
    /// Returns the entry's queue id, unique across restarts and clock
    /// steps. For an entry whose body is in memory (a bounce); a client's
    /// message streams in through [`Spool::begin`].
    fn store(&self, entry: &Entry) -> impl Future<Output = Result<String, StoreError>>;
    /// A spool file being written while its message's body arrives: made
    /// by [`Spool::begin`], fed by [`Spool::append`], made durable by
    /// [`Spool::commit`] or dropped by [`Spool::abort`].
    type Writer: 'static;
    /// A fresh queue id that names no file: a message delivered into
    /// its mailboxes before its client hears `250` is known by it (the
    /// mailbox files are named after it) and never queued. `None`, the
    /// default, for a spool that makes ids only as it stores: such a
    /// message is then queued and delivered after the reply as any other.
    fn fresh_id(&self) -> Option<String> {
        None
    }
    /// Starts the file of a message whose body is about to arrive.
    fn begin(&self) -> impl Future<Output = Result<Self::Writer, StoreError>>;
    /// Writes the next piece of the body. After an error the node aborts
    /// the writer, and the client hears `451` at the end of the data.
    fn append(
        &self,
        writer: &mut Self::Writer,
        piece: Vec<u8>,
    ) -> impl Future<Output = Result<(), StoreError>>;
    /// Adds the envelope (`entry`, whose body is empty: the pieces are
    /// the body) and makes the file durable, as [`Spool::store`] does;
    /// returns the queue id. On error nothing is queued.
    fn commit(&self, writer: Self::Writer, entry: &Entry)
    -> impl Future<Output = Result<String, StoreError>>;
    /// Drops a file that will not be committed (a refused message, a
    /// client gone, a failed append): nothing of it stays.
    fn abort(&self, writer: Self::Writer) -> impl Future<Output = ()>;
    /// The body of a queued message, read back for a delivery round: the
    /// node keeps only envelopes in memory.
    fn body(&self, id: &str) -> impl Future<Output = Result<Vec<u8>, StoreError>>;
    fn update(&self, id: &str, entry: &Entry) -> impl Future<Output = Result<(), StoreError>>;
    fn remove(&self, id: &str) -> impl Future<Output = Result<(), StoreError>>;
    /// Every stored entry, in id order, for recovery, each with an empty
    /// body ([`Spool::body`] reads it when it is delivered); a file that cannot be
    /// read back is listed as [`Unreadable`] beside the good ones, so that
    /// one bad file never hides the rest. `Err` is a passing failure of the
    /// listing itself (no descriptors left, an I/O error): nothing is
    /// quarantined, and the node lists again later.
    fn list(&self) -> impl Future<Output = Result<Listing, StoreError>>;
    /// Moves an unreadable file out of the queue (the real spool keeps it
    /// in `corrupt/`), so that it is neither lost nor read again at every
    /// restart.
    fn quarantine(&self, bad: &Unreadable) -> impl Future<Output = ()>;
}

/// What [`Spool::list`] finds: each file, read back or not.
pub type Listing = Vec<Result<(String, Entry), Unreadable>>;

/// A spool file that could not be read back as an [`Entry`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    /// The file's name in the queue.
    pub name: String,
    /// Why it could not be read, for the log.
    pub reason: String,
}

/// Where mail for a domain goes: the mail exchangers, in preference order.
pub trait Resolver: 'static {
    fn resolve(&self, domain: &Domain) -> impl Future<Output = Vec<SocketAddr>>;
}

/// Local delivery.
pub trait Mailboxes: 'static {
    fn deliver(
        &self,
        mailbox: &str,
        id: &str,
        message: &Message,
    ) -> impl Future<Output = Result<(), DeliverError>>;

    /// Delivers a message whose every recipient is local before its client
    /// hears `250`, in place of queueing it: one result per mailbox, in
    /// order. An `Ok` must be as durable as a queued message (the reply
    /// may follow it at once); a recipient whose delivery failed is
    /// queued, and its error heard again in a delivery round. Default: one
    /// [`Mailboxes::deliver`] after the other, for mailboxes whose
    /// `deliver` is that durable already.
    fn deliver_before_reply(
        &self,
        mailboxes: &[String],
        id: &str,
        message: &Message,
    ) -> impl Future<Output = Vec<Result<(), DeliverError>>> {
        async move {
            let mut results = Vec::with_capacity(mailboxes.len());
            for mailbox in mailboxes {
                results.push(self.deliver(mailbox, id, message).await);
            }
            results
        }
    }
}

/// Why [`Spool::store`] failed. The client hears `451` either way (the
/// message was never acknowledged, so it still has it); the kind is for the
/// log and for whoever looks after the disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// Trying again later may work: the disk is full, the descriptors ran
    /// out, the device failed for now, the call was interrupted.
    Transient(String),
    /// Trying again will fail the same way: the spool refuses this entry.
    Permanent(String),
}

/// Why a recipient was not delivered, locally ([`Mailboxes::deliver`]) or
/// to a remote exchanger. A transient failure is worth another round after
/// a backoff; a permanent one is bounced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliverError {
    /// A `4xx`, no exchanger answered, a full disk: another round may work.
    Transient(String),
    /// A `5xx`, no exchanger for the domain, a mailbox that cannot be
    /// written: another round will fail the same way.
    Permanent(String),
}

macro_rules! transient_or_permanent {
    ($t:ident) => {
        impl $t {
            pub fn is_transient(&self) -> bool {
                matches!(self, $t::Transient(_))
            }

            /// What went wrong, for people: the log, the bounce.
            pub fn message(&self) -> &str {
                match self {
                    $t::Transient(m) | $t::Permanent(m) => m,
                }
            }
        }

        /// The message alone: the kind is in the type, not in the text.
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.message())
            }
        }

        impl std::error::Error for $t {}
    };
}

transient_or_permanent!(StoreError);
transient_or_permanent!(DeliverError);

/// What the node does, for oracles, recorders and traces. Every method has
/// a do-nothing default.
pub trait Tap: 'static {
    /// A connection was accepted; returns its id for the calls below.
    fn connected(&self, _peer: IpAddr) -> u64 {
        0
    }
    /// A trusted proxy (the address given to `connected`) named the
    /// client of this connection: from here on the session is about
    /// `client`.
    fn proxied(&self, _conn: u64, _client: IpAddr) {}
    fn client_bytes(&self, _conn: u64, _bytes: &[u8]) {}
    fn server_bytes(&self, _conn: u64, _bytes: &[u8]) {}
    /// A piece of the body of the message being received on `conn`.
    fn body_piece(&self, _conn: u64, _piece: &[u8]) {}
    /// The pieces since the last `handed_on` were dropped (a refused
    /// message, a client gone).
    fn body_dropped(&self, _conn: u64) {}
    /// A message was stored; its body came before as pieces.
    fn handed_on(&self, _conn: u64, _message: &Message) {}
    /// The STARTTLS handshake on `conn` completed: from here on its bytes
    /// went over TLS. `injected` octets the client sent after the
    /// STARTTLS line were thrown away unread.
    fn tls_established(&self, _conn: u64, _injected: u64) {}
    fn closed(&self, _conn: u64) {}
    /// Queue events: stored, delivered, deferred, bounced, recovered.
    fn event(&self, _what: &str) {}
}

/// A tap that sees nothing.
pub struct NoTap;
impl Tap for NoTap {}
