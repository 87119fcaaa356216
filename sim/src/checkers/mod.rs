//! The judges of a run. The simulation proves nothing by running; these do.
//!
//! - [`wire`]: every session of the relay, byte for byte, by core's oracle,
//!   which knows what the relay may accept from whom (RFC 5321, RFC 2505).
//! - [`delivery`]: what came out of the relay, end to end: nothing arrives
//!   that an untrusted client sent to a foreign domain, nothing arrives that
//!   no client sent (smuggling), and after the heal nothing acked is lost and
//!   legitimate mail got through.
//! - [`hostile`]: the deadlines and throttles against hostile peers, and
//!   liveness while they run.
//!
//! The wire oracle alone would miss a relay that refuses on the wire and
//! relays anyway; the delivery checks alone would miss a bad reply or an
//! acceptance that a fault later hid. Together they judge both sides.

pub(crate) mod delivery;
pub(crate) mod hostile;
mod violation;
pub(crate) mod wire;

pub use violation::{Kind, Violation};

use crate::world::Shared;

/// The final judgement, once the run is over: sessions still open are
/// judged as they stand, then loss and liveness.
pub(crate) fn judge_end(world: &Shared) {
    let mut w = world.borrow_mut();
    wire::finish_all(&mut w);
    delivery::judge_end(&mut w);
    hostile::judge_end(&mut w);
}
