//! What the session tests read off a session: its outputs, drained.

use std::time::Duration;

use relayguard_core::{Output, Session};

/// What came out of one session.
#[derive(Default)]
pub struct Seen {
    pub wire: String,
    pub pieces: Vec<Vec<u8>>,
    pub messages: Vec<Vec<u8>>,
    pub dropped: usize,
    pub closed: bool,
    /// The most the session held at any point.
    pub peak: usize,
}

/// Takes every output the session has at `now`, storing each message
/// (queue id `q1`) as a driver would.
pub fn drain(s: &mut Session, now: Duration, seen: &mut Seen) {
    seen.peak = seen.peak.max(s.buffered());
    while let Some(o) = s.poll_output() {
        seen.peak = seen.peak.max(s.buffered());
        match o {
            Output::Send(b) => seen.wire.push_str(&String::from_utf8_lossy(&b)),
            Output::Body(p) => seen.pieces.push(p),
            Output::DropBody => seen.dropped += 1,
            Output::Message(m) => {
                seen.messages.push(m.body.clone());
                s.message_stored(now, Ok("q1".into()));
            }
            Output::Close => seen.closed = true,
            // These tests never offer TLS.
            Output::StartTls => {}
        }
    }
}
