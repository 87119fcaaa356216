//! The checking side: everything that judges a relay rather than being one.
//!
//! The protocol modules never depend on this, with one exception: the
//! injected bugs of [`buggify`], which must live inside the real code to
//! prove that these checkers catch them.

pub mod buggify;
pub mod drive;
pub mod oracle;
pub mod record;
pub mod replay;
pub mod shrink;
pub mod transcript;

pub use buggify::{Bug, Bugs};
pub use drive::{Driver, Run};
pub use oracle::{Oracle, Verdict, Violation, ViolationKind};
pub use record::Recorder;
pub use shrink::{Shrunk, shrink};
pub use transcript::{Step, Transcript};

/// The end-of-data look-alikes of SMTP smuggling, in the catalogue's
/// order (docs/attacks.md #S1 to #S11): each must be taken as body text,
/// never as the end of DATA; `CRLF.CRLF` alone ends a message.
pub const SMUGGLING_SEQUENCES: &[&[u8]] = &[
    b"\n.\n",
    b"\n.\r",
    b"\r.\n",
    b"\r.\r",
    b"\n.\r\n",
    b"\r.\r\n",
    b"\r\n\x00.\r\n",
    b"\r\n.\r\r\n",
    b"\r\r\n.\r\r\n",
    b"\r\n.\n",
    b"\r\n.\r",
];
