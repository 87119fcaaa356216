//! The `relayguard` command's library half: the real-world backends the
//! subcommands (`src/cmd/`) use and the whole-system tests share: the
//! fsynced spool, Maildir delivery, and transcript replay over TCP.

pub mod bounded;
pub mod maildir;
pub mod probe;
pub mod remote;
pub mod spool;
pub mod unnamed;
