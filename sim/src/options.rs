//! Every fixed knob of the simulation, in one place.
//!
//! These are not drawn from the seed: they are the frame every seed runs in.
//! Most of them are timings, and they hang together: the faults all fall
//! before [`HEAL_AT`], the actors retry until [`GIVE_UP_AT`], and the relay's
//! own retries ([`RETRY_MAX`]) are short enough that everything an actor
//! hands over by then can still be delivered before [`END_AT`]. Change one
//! and check the others; any change here moves every trace hash.

use std::net::Ipv4Addr;
use std::time::Duration;

// ------------------------------------------------------------ the network

/// The relay under test. An address of TEST-NET-2 (RFC 5737): it can never
/// be a real host, so a sent trace or a regression names nobody.
pub const RELAY: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 25);

/// Where the second relay instance of the twin fault runs: a host of its
/// own, on the relay's spool (`disk.rs`), which must find it locked.
pub(crate) const TWIN: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 26);

/// The address every seed's relay trusts as its proxy (`[proxy]`). On the
/// seeds without a proxy no host has it, so every PROXY header and XCLIENT
/// the spammers send comes from an untrusted address; on the proxy seeds
/// the proxy host has it (`swarm/proxy.rs`).
pub(crate) const PROXY_HOST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 40);

/// The misconfigured proxy's address: the gateway of Docker's default
/// bridge, which its userland proxy connects from, inside
/// [`DOCKER_NETWORK`], which the misconfigured relay puts in its LAN.
pub(crate) const DOCKER_GATEWAY: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 1);
pub(crate) const DOCKER_NETWORK: &str = "172.17.0.0/16";

/// The port every host listens on, the relay and the foreign exchangers alike:
/// the relay delivers to port 25 as a real MTA does.
pub(crate) const PORT: u16 = 25;

/// The local domain names a seed picks from, and the foreign ones it sends
/// to. `defunct.example` has a single mailbox, so that mail to it is refused
/// and must come back as a bounce; the first is where the resolver sends any
/// name it does not know.
pub(crate) const FOREIGN: [&str; 4] = [
    "foreign.example",
    "nmap.scanme.org",
    "partner.example",
    "defunct.example",
];

/// A domain the relay may be configured to relay to (backup MX): mail for it
/// is legitimate from anyone when it is configured, an attack otherwise.
pub(crate) const BACKUP: &str = "backup.example.org";

/// Mailbox names in every local domain. `postmaster` is among them because
/// RFC 5321 requires it.
pub(crate) const USERS: [&str; 4] = ["alice", "bob", "postmaster", "erin"];

/// Turmoil's wall clock starts here (late 2025), not at the machine's time:
/// anything that reads it sees the same date on every machine and every run.
pub(crate) const EPOCH: Duration = Duration::from_secs(1_764_000_000);

/// Turmoil's link latency is drawn from this range. Never zero, so that
/// bytes in flight and the relay's crash can overlap.
pub(crate) const MIN_LATENCY: Duration = Duration::from_millis(1);
pub(crate) const MAX_LATENCY: Duration = Duration::from_millis(15);

/// The relay's links to the exchangers after the heal: a latency fault is
/// not repaired by turmoil, so the heal sets it back to something small.
pub(crate) const HEALED_LATENCY: Duration = Duration::from_millis(5);

// ------------------------------------------------------------ the seed

/// The swarm draws from the seed mixed with this, turmoil from the seed
/// itself and each actor from `seed * 31 + its index`: one seed, streams
/// that do not mirror each other.
pub(crate) const SWARM_SALT: u64 = 0x05ee_d0f5_e1a7;
/// Salts the stream of the CHUNKING draws (which senders use BDAT, which
/// exchangers offer it, the BDAT spammer), apart from the swarm's.
pub(crate) const CHUNKING_SALT: u64 = 0x0bda_7c4a_11ed;
/// Salts the draw of how much of a body the relay holds in memory, apart
/// from the others (so that adding it moved none of them).
pub(crate) const HELD_SALT: u64 = 0x4e1d_b0d1_e5a1;
/// What the relay holds of a body in memory (`NodeConfig::held_body_max`),
/// one per seed: every body streamed into the spool; a short one held
/// (longer ones start held and spill into the spool); every body the
/// simulation sends held (local mail delivered before the reply).
pub(crate) const HELD_BODY_MAX: [usize; 3] = [0, 512, 64 * 1024];

/// The proxy draw's own stream (`swarm/proxy.rs`): the seed mixed with
/// this, so that adding the proxy moved none of the swarm's other draws.
pub(crate) const PROXY_SALT: u64 = 0x0970_c5ee_d0f5;

// ------------------------------------------------------------ time

/// Turmoil's step. Small beside every other timing here (the spool write,
/// the slow client's pace), so that events do not bunch up on a tick; larger
/// would run faster but blur the crash-during-write window.
pub(crate) const TICK: Duration = Duration::from_millis(20);

/// An exchanger idle this long is put to sleep (`naps.rs`) until the
/// relay next connects to it. Longer than a delivery's pauses, so that it
/// does not sleep between the relay's connections of one delivery round;
/// short beside a run, in which an exchanger is busy for a few seconds.
pub(crate) const NAP_AFTER: Duration = Duration::from_secs(1);

/// When the faults stop and the world heals. The swarm draws every fault
/// before 25 s, and the longest lasts 10 s more; whatever is still on at
/// 30 s is lifted, so that what follows judges the relay on a working
/// network: after the heal, every acked message must get through.
pub(crate) const HEAL_AT: Duration = Duration::from_secs(30);

/// Actors stop retrying at this time. Well after the heal, so that a
/// legitimate sender with the longest backoff ([`RETRY_MAX`]) gets several
/// tries on a healed network, and well before [`END_AT`], so that the relay
/// has time to deliver what it accepted last.
pub(crate) const GIVE_UP_AT: Duration = Duration::from_secs(110);

/// The latest the run goes on. A run ends earlier once healed, every host is
/// done and the spool is empty; a message still queued here is a violation.
pub(crate) const END_AT: Duration = Duration::from_secs(150);

/// Turmoil's own limit, beyond [`END_AT`]: the run loop ends the run, and
/// turmoil's "ran out of time" error never fires on a run that is merely
/// long (it would be reported as a simulation error).
pub(crate) const SIM_LIMIT: Duration = END_AT.saturating_add(Duration::from_secs(30));

// ------------------------------------------------------------ the relay

/// Connection limits well under the flooder's 12 to 21 connections from one
/// address, so that the per-IP limit is exercised every time there is one.
pub(crate) const MAX_CONNECTIONS: usize = 40;
pub(crate) const MAX_PER_IP: usize = 8;

/// The relay's delivery timeouts, short so that a held or partitioned
/// exchanger costs seconds of simulated time, not minutes.
pub(crate) const RELAY_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const RELAY_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// The relay's retry backoff: 1, 2, 4, 8, 8… s, so that a message deferred
/// by a fault is retried several times between [`HEAL_AT`] and [`END_AT`].
pub(crate) const RETRY_BASE: Duration = Duration::from_secs(1);
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(8);

/// Longer than any run: nothing bounces for age in the simulation, so every
/// bounce judged comes from a permanent refusal.
pub(crate) const MAX_QUEUE_AGE: Duration = Duration::from_secs(3600);

/// How long a spool write takes. Two ticks at least, so that a crash can
/// land while a write is under way: the mid-transaction crash the
/// `Crash { queued: false }` fault waits for.
pub(crate) const SPOOL_WRITE: Duration = Duration::from_millis(40);

// ------------------------------------------------------------ the actors

/// An actor's connect gives up after this; the relay may be down or
/// partitioned from it.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The core client's whole-transaction timeout for a legitimate sender.
pub(crate) const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A legitimate sender's retry: from the first wait, doubling up to the
/// cap, plus up to the jitter so that senders do not retry in step.
pub(crate) const SENDER_RETRY_FIRST: Duration = Duration::from_secs(1);
pub(crate) const SENDER_RETRY_MAX: Duration = Duration::from_secs(8);
pub(crate) const SENDER_RETRY_JITTER_MS: u64 = 500;

/// A raw sender (spammer) waits this long for the greeting, then this long
/// for the reply to each chunk; silence is taken as "go on" so that a
/// pipelining server that answers later does not stall the attack.
pub(crate) const GREETING_WAIT: Duration = Duration::from_secs(3);
pub(crate) const CHUNK_REPLY_WAIT: Duration = Duration::from_secs(2);

/// The slow client's pace: one byte of EHLO per this, then silence for up
/// to [`SLOW_SILENCE`]: longer than any command timeout the swarm draws, so
/// that the relay's timeout, not the client, ends the session.
pub(crate) const SLOW_BYTE: Duration = Duration::from_millis(300);
pub(crate) const SLOW_SILENCE: Duration = Duration::from_secs(90);

/// A cut sender's write of more than this many octets fails: only the DATA
/// body is that long, so the connection drops in the middle of DATA.
pub(crate) const CUT_OVER: usize = 300;

// ------------------------------------------------------------ hostile peers

/// The relay's deadlines in the simulation (the command timeout is drawn,
/// 20 to 39 s): a session lasts at most [`SESSION_TIMEOUT`], failed AUTH
/// pauses [`AUTH_DELAY`] times the failures of the session, and an address
/// is refused AUTH after [`AUTH_FAILURES_PER_IP`] failures for longer than
/// any run.
pub(crate) const SESSION_TIMEOUT: Duration = Duration::from_secs(45);
pub(crate) const MIN_DATA_RATE: u64 = 500;
pub(crate) const AUTH_DELAY: Duration = Duration::from_millis(500);
pub(crate) const AUTH_FAILURES_PER_IP: u64 = 5;

/// A trickler sends one octet per this: far below the minimum data rate,
/// and often enough that an idle timer would never fire.
pub(crate) const TRICKLE_BYTE: Duration = Duration::from_secs(3);
/// Trickling (and reconnecting when cut) stops here, well before
/// [`GIVE_UP_AT`]; the non-reader holds its connection until
/// [`NON_READER_UNTIL`], later than any session may last, so that a relay
/// without a write deadline is seen holding it.
pub(crate) const TRICKLE_UNTIL: Duration = Duration::from_secs(80);
pub(crate) const NON_READER_UNTIL: Duration = Duration::from_secs(105);
/// The non-reader opens a new connection when one is dropped until this:
/// after the heal (no crash ends the last one), early enough that the
/// last is held longer than [`SESSION_TIMEOUT`].
pub(crate) const NON_READER_RECONNECT_UNTIL: Duration = Duration::from_secs(50);

/// The checkers' slack on the relay's deadlines: turmoil's latency and
/// tick, with room to spare.
pub(crate) const DEADLINE_SLACK: Duration = Duration::from_secs(1);

/// Liveness under attack: a legitimate message must be accepted within
/// this of its first attempt, or of the heal if it was first tried before
/// it (faults may legitimately hold it until then). Over the default 200
/// seeds the slowest took 9.8 s from its first attempt, all before 25 s:
/// twice that is room for a crash and a backoff more, and far less than
/// the hostile actors would cost if they held the relay's connections.
pub(crate) const LIVENESS_BOUND: Duration = Duration::from_secs(20);
