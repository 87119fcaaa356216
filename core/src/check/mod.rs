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
pub mod transcript;

pub use buggify::{Bug, Bugs};
pub use drive::{Driver, Run};
pub use oracle::{Oracle, Verdict, Violation, ViolationKind};
pub use record::Recorder;
pub use transcript::{Step, Transcript};
