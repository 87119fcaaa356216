//! The `relayguard` command's library half: what the subcommands share with
//! the whole-system tests (finding and loading transcripts and configs).

pub mod maildir;
pub mod remote;
pub mod spool;
