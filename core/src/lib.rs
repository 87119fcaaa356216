//! relayguard-core: the SMTP protocol and the relay policy as pure state
//! machines.
//!
//! Nothing here does I/O or reads a clock: bytes and the current time come in
//! as arguments, replies and messages go out as values. That is what lets the
//! same code run in the simulation, under the fuzzers, in transcript replay
//! and in the real server, and lets every run be replayed exactly.

pub mod address;
pub mod addrlist;
pub mod buggify;
pub mod client;
pub mod command;
pub mod config;
pub mod data;
pub mod drive;
pub mod lint;
pub mod netlist;
pub mod oracle;
pub mod policy;
pub mod record;
pub mod replay;
pub mod reply;
pub mod session;
pub mod transcript;
