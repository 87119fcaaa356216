//! relayguard-node: the async relay node.
//!
//! The node is generic over its ports so that the simulation and the real
//! server run the same code: everything that touches the world goes through
//! the traits [`Net`], [`Spool`], [`Resolver`] and [`Mailboxes`], and the
//! node watches itself through a [`Tap`]. The simulation plugs in turmoil's
//! network and an in-memory spool whose writes take simulated time; `serve`
//! plugs in tokio TCP, the file-system spool, Maildir folders and the
//! `[routes]` table. What the simulation proves about the accept loop, the
//! queue, retries and bounces is then proved about the code that serves.
//!
//! The node is single-threaded (its tasks are `spawn_local`ed on a
//! `LocalSet`, as turmoil runs hosts), reads time only from `tokio::time`,
//! and never iterates a `HashMap`: one seed, one run.

mod accept;
mod anvil;
mod bounce;
mod clock;
mod config;
mod delivery;
mod node;
mod ports;
mod proxy_header;
mod queue;
mod session_io;
pub mod tls;

pub use anvil::{ANVIL_SIZE, Anvil};
pub use clock::Clock;
pub use config::NodeConfig;
pub use delivery::{run_client, run_client_tls};
pub use node::Node;
pub use ports::{
    DeliverError, Entry, Listing, Mailboxes, Net, NoTap, Resolver, Spool, StoreError, Tap, Unreadable,
};
pub use session_io::{AuthThrottle, ServerHooks, drive_server};
