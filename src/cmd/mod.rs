//! The subcommands: each parses its arguments, calls into the core, the
//! node, the simulation or the backends of the library half, and prints.
//! What they share with the tests lives in the library (`relayguard::…`).

pub mod explain;
pub mod lint;
pub mod probe;
pub mod replay;
pub mod serve;
pub mod shrink;
pub mod sim;
pub mod summary;
