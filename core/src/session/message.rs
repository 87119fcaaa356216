//! What a session hands its driver: the peer it serves, the messages it
//! finished, the outputs in order, and the result of storing a message.

use std::net::IpAddr;

use crate::address::Path;
use crate::policy::Destination;

/// Who is on the other end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The client's address: every access and relay rule is about it. The
    /// socket's peer, unless a trusted proxy named the client (PROXY
    /// header, XCLIENT).
    pub ip: IpAddr,
    /// The trusted proxy's own address (the socket's peer) when `ip` was
    /// named by it; `None` for a direct connection.
    pub via: Option<IpAddr>,
}

impl Peer {
    /// A client connected directly: the socket's peer is the client.
    pub fn direct(ip: IpAddr) -> Peer {
        Peer { ip, via: None }
    }

    /// The address the connection came from: the proxy's when there is
    /// one, else the client's. Only this address may be trusted to name
    /// another.
    pub fn socket(&self) -> IpAddr {
        self.via.unwrap_or(self.ip)
    }
}

/// One accepted recipient and where it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// As the client wrote it, canonicalized.
    pub path: Path,
    /// Where the policy decided it goes; delivery follows this and never
    /// reads the address again.
    pub destination: Destination,
}

/// A message the client finished sending, for the driver to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The client's address.
    pub client: IpAddr,
    /// The HELO/EHLO argument, as written.
    pub helo: String,
    /// The authenticated user, if any.
    pub user: Option<String>,
    /// The reverse-path, canonical; [`Path::NULL`] for a bounce.
    pub from: Path,
    /// Every accepted recipient, in RCPT order; never empty, since DATA
    /// and BDAT need one.
    pub recipients: Vec<Recipient>,
    /// Unstuffed, CRLF lines, without the final `.` line (or the joined
    /// BDAT chunks, their last line ended). Never holds a bare CR, a bare
    /// LF or a NUL. Empty from a session that streams bodies
    /// ([`Session::stream_bodies`](crate::Session::stream_bodies)): the
    /// body came before, as [`Output::Body`] pieces.
    pub body: Vec<u8>,
}

/// What the driver must do, from [`Session::poll_output`](crate::Session::poll_output), in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Bytes for the client. Consecutive replies are joined into one.
    Send(Vec<u8>),
    /// Store this durably, then call [`Session::message_stored`](crate::Session::message_stored).
    Message(Box<Message>),
    /// The next piece of the body being received, at most
    /// [`BODY_PIECE`](crate::BODY_PIECE) octets, only from a session that
    /// streams bodies: append it to the message's spool file. The pieces
    /// since the last `Message`, `DropBody` or `Close` are the body, and
    /// are followed by a `Message` (with an empty body: store it with
    /// them), by `DropBody`, or by `Close` (drop them too).
    Body(Vec<u8>),
    /// The pieces handed out since the last `Message` belong to a message
    /// that was refused (too big, a bare CR or LF): drop them.
    DropBody,
    /// Start TLS now (RFC 3207): the replies before it (the `220`) are
    /// written out first, then the handshake is done on the connection,
    /// then [`Session::tls_established`](crate::Session::tls_established)
    /// is called. Nothing else comes out until then. A handshake that
    /// fails ends the connection: the driver simply closes it.
    StartTls,
    /// Close the connection. Nothing follows.
    Close,
}

/// The result of storing a message: its queue id, or why it was not stored.
pub type StoreResult = Result<String, NotStored>;

/// Why the driver could not store a message. The client hears `451` and may
/// try again; the reason is for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotStored(pub String);

impl std::fmt::Display for NotStored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
