//! relayguard-sim: the relay node in a turmoil world of LAN hosts, remote
//! users, outside senders, spammers and foreign mail exchangers, with faults,
//! judged by oracles. One seed decides everything: the configuration, the
//! actors, the faults and every draw they make (VOPR / FoundationDB style).
//!
//! Why a simulation: an open relay is rarely a wrong reply to one command.
//! It is a configuration no one tested, an address form no one thought of, a
//! message smuggled behind a bare LF, an acceptance lost in a crash. Unit
//! tests and the corpus check what someone wrote down; a seed draws a world
//! no one wrote down, runs the node's real code in it on simulated time, and
//! judges both what the relay said and what it delivered. A failing seed
//! reproduces exactly, on any machine, from its number (and [`COMMIT`]).
//!
//! The parts, in the order a run uses them:
//!
//! - `options`: the fixed knobs every seed runs in, and why they are set so.
//! - `rng`: the seeded generator and the trace hash.
//! - `swarm`: what a seed decides up front: configuration, actors, attacks,
//!   the fault plan.
//! - `world`: the state the hosts share, and the trace.
//! - `backends`, `disk`, `exchanger`, `actors`, `hostile`: the relay's
//!   backends (its spool and mailboxes behaving as a failing file system in
//!   `disk`), the foreign exchangers, the clients, the clients that are slow
//!   on purpose.
//! - `naps`: the exchangers sleep while idle, so that turmoil does not
//!   tick them; the relay's connect wakes them.
//! - `proxy`: the proxy host of the proxy seeds, which names each client
//!   to the relay (PROXY header, XCLIENT) or, misconfigured, does not.
//! - `faults`: the scheduler that plays the plan and heals the world.
//! - `tls`: rustls with the seed's randomness and the simulation's clock,
//!   so that a handshake reproduces byte for byte.
//! - `checkers`: the wire oracle on every session, and the end-to-end, loss
//!   and liveness judgement on what was delivered.
//! - `run`, `report`, `campaign`: one seed, its result, many seeds.
//! - `determinism`: a seed run twice, and where the two runs parted.
//! - `shrink`: a failing seed's world cut down to the actors and faults
//!   that still make it fail.

mod actors;
mod backends;
mod campaign;
mod checkers;
mod determinism;
mod disk;
mod exchanger;
mod faults;
mod hostile;
mod naps;
mod options;
mod proxy;
mod report;
mod rng;
mod run;
mod shrink;
mod starttls;
mod swarm;
mod tls;
mod world;

pub use campaign::{campaign, campaign_in};
pub use checkers::{Kind, Violation};
pub use determinism::first_difference;
pub use disk::{Errno, Junk, Op};
pub use faults::{CrashPoint, Fault};
pub use options::RELAY;
pub use report::Report;
pub use rng::Rng;
pub use run::{run, run_in, run_swarm};
pub use shrink::{ShrunkSeed, shrink_seed};
pub use swarm::{Actor, Proxying, Role, Scenario, Swarm, Task, swarm, swarm_in};
pub use world::Stats;

/// The commit this crate was built from (`git rev-parse --short HEAD`), or
/// "unknown" when built outside a git checkout. A seed's world and trace
/// are a function of the seed and the code: the commit is half of what
/// reproduces a failing seed.
pub const COMMIT: &str = env!("RELAYGUARD_SIM_COMMIT");
