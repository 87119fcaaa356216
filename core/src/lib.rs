//! relayguard-core: the SMTP protocol and the relay policy as pure state
//! machines.
//!
//! Nothing here does I/O or reads a clock: bytes and the current time come in
//! as arguments, replies and messages go out as values. That is what lets the
//! same code run in the simulation, under the fuzzers, in transcript replay
//! and in the real server, and lets every run be replayed exactly.

pub mod reply;
pub mod transcript;
