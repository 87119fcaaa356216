//! The hostile-peers checker: how long the relay lets a session hold on,
//! how many passwords it lets one address try, and whether legitimate mail
//! still gets through in time while the hostile actors run.
//!
//! It watches every session of the relay from the tap, on simulated time,
//! and knows only the configured limits, not the session's code:
//!
//! - a command line the relay has begun to read is complete (or the
//!   session closed) within `command_timeout_secs` of its first octet;
//! - inside DATA, the message ends (or the session closes) within
//!   `data_timeout_secs` plus a second per `min_data_rate` octets;
//! - no session lasts longer than `session_timeout_secs`;
//! - after the k-th failed AUTH of a session the relay reads nothing more
//!   from it for k times `auth_failure_delay_ms` (k up to ten);
//! - one address hears `535` no more than `auth_failures_per_ip` times,
//!   plus one for each other connection it may hold at once (a failure on
//!   one connection is counted once its reply is written), counted since
//!   the relay last started, since the node keeps the count in memory;
//! - liveness under attack: a legitimate message is accepted within
//!   [`LIVENESS_BOUND`] of its first attempt, or of the heal when it was
//!   first tried before (the faults may hold it until then).
//!
//! Each bound has [`DEADLINE_SLACK`] for turmoil's latency and tick.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::checkers::Kind;
use crate::options::{DEADLINE_SLACK, HEAL_AT, LIVENESS_BOUND, MAX_PER_IP};
use crate::world::World;

/// One session of the relay, as the clock sees it.
#[derive(Debug)]
pub(crate) struct Timing {
    peer: IpAddr,
    opened: Duration,
    /// When the first octet of the command line being read arrived.
    line_started: Option<Duration>,
    /// In DATA: since when, the octets so far, and the last four (to see
    /// the end of data across reads).
    data: Option<(Duration, u64)>,
    tail: Vec<u8>,
    /// Failed AUTH in this session, and when the last `535` was written.
    failures: u32,
    last_failure: Option<Duration>,
    /// Reported already: one violation per session is enough.
    faulted: bool,
}

/// The checker's state in the world.
#[derive(Debug, Default)]
pub(crate) struct Hostile {
    sessions: BTreeMap<u64, Timing>,
    /// `535` replies per client address.
    failures: BTreeMap<IpAddr, u64>,
}

pub(crate) fn connected(w: &mut World, conn: u64, peer: IpAddr) {
    let t = Timing {
        peer,
        opened: w.now_in_host(),
        line_started: None,
        data: None,
        tail: Vec::new(),
        failures: 0,
        last_failure: None,
        faulted: false,
    };
    w.hostile.sessions.insert(conn, t);
}

pub(crate) fn client_bytes(w: &mut World, conn: u64, bytes: &[u8]) {
    let now = w.now_in_host();
    let delay = Duration::from_millis(w.config.limits.auth_failure_delay_ms);
    let Some(t) = w.hostile.sessions.get_mut(&conn) else {
        return;
    };
    let mut found = Vec::new();
    if let Some(at) = t.last_failure.take() {
        let pause = delay * t.failures.min(10);
        if now < at + pause {
            found.push(format!(
                "no auth pause: session {conn} from {} was read {} ms after its failed AUTH number {}, before the {} ms pause",
                t.peer,
                (now - at).as_millis(),
                t.failures,
                pause.as_millis()
            ));
        }
    }
    match &mut t.data {
        Some((_, octets)) => {
            *octets += bytes.len() as u64;
            t.tail.extend_from_slice(bytes);
            if let Some(end) = memchr_end_of_data(&t.tail) {
                let rest = t.tail.split_off(end);
                t.data = None;
                t.tail.clear();
                t.line_started = (!rest.is_empty() && !rest.ends_with(b"\n")).then_some(now);
            } else {
                let keep = t.tail.len().saturating_sub(4);
                t.tail.drain(..keep);
            }
        }
        None => match bytes.iter().rposition(|&b| b == b'\n') {
            Some(i) => t.line_started = (i + 1 < bytes.len()).then_some(now),
            None => {
                t.line_started.get_or_insert(now);
            }
        },
    }
    for f in found {
        fault(w, conn, Kind::AuthPause, f);
    }
    judge(w, conn, now);
}

/// Where the data ends (after `CRLF.CRLF`), if it does in `bytes`.
fn memchr_end_of_data(bytes: &[u8]) -> Option<usize> {
    bytes.windows(5).position(|w| w == b"\r\n.\r\n").map(|i| i + 5)
}

pub(crate) fn server_bytes(w: &mut World, conn: u64, bytes: &[u8]) {
    let now = w.now_in_host();
    // Counted per client, the one a proxy carries on this connection.
    let client = w.client_of(conn);
    let Some(t) = w.hostile.sessions.get_mut(&conn) else {
        return;
    };
    let mut failed = 0;
    for line in bytes.split(|&b| b == b'\n') {
        if line.starts_with(b"354 ") {
            t.data = Some((now, 0));
            // The CRLF before the final dot may be the DATA line's own.
            t.tail = b"\r\n".to_vec();
            t.line_started = None;
        } else if line.starts_with(b"535 ") {
            failed += 1;
        }
    }
    if failed > 0 {
        t.failures += failed;
        t.last_failure = Some(now);
        let peer = client.unwrap_or(t.peer);
        let n = w.hostile.failures.entry(peer).or_insert(0);
        *n += failed as u64;
        let limit = w.config.limits.auth_failures_per_ip + MAX_PER_IP as u64 - 1;
        if *n > limit {
            let n = *n;
            fault(
                w,
                conn,
                Kind::AuthThrottle,
                format!(
                    "no auth throttle: {peer} heard 535 {n} times, more than the {limit} its limit allows"
                ),
            );
        }
    }
}

pub(crate) fn closed(w: &mut World, conn: u64) {
    let now = w.now_in_host();
    judge(w, conn, now);
    w.hostile.sessions.remove(&conn);
}

/// The relay restarted: the sessions of the one that died are over, and
/// its count of failures per address (kept in memory, as Postfix's anvil)
/// starts again.
pub(crate) fn relay_starts(w: &mut World) {
    w.hostile.sessions.clear();
    w.hostile.failures.clear();
}

/// Whether session `conn` has overstayed a deadline by `now`.
fn judge(w: &mut World, conn: u64, now: Duration) {
    let l = &w.config.limits;
    let Some(t) = w.hostile.sessions.get(&conn) else {
        return;
    };
    let secs = Duration::from_secs;
    let mut why = None;
    let mut kind = Kind::SessionLifetime;
    if now > t.opened + secs(l.session_timeout_secs) + DEADLINE_SLACK {
        why = Some(format!(
            "session lifetime: session {conn} from {} open {:.1} s, over session_timeout_secs {}",
            t.peer,
            (now - t.opened).as_secs_f64(),
            l.session_timeout_secs
        ));
    } else if let Some(at) = t
        .line_started
        .filter(|&at| now > at + secs(l.command_timeout_secs) + DEADLINE_SLACK)
    {
        kind = Kind::CommandDeadline;
        why = Some(format!(
            "command deadline: session {conn} from {} still reading a command line begun {:.1} s ago, over command_timeout_secs {}",
            t.peer,
            (now - at).as_secs_f64(),
            l.command_timeout_secs
        ));
    } else if let Some((at, octets)) = t.data {
        let credit = match l.min_data_rate {
            0 => Duration::ZERO,
            rate => Duration::from_millis(octets * 1000 / rate),
        };
        if now > at + secs(l.data_timeout_secs) + credit + DEADLINE_SLACK {
            kind = Kind::DataDeadline;
            why = Some(format!(
                "data deadline: session {conn} from {} in DATA for {:.1} s with {octets} octets, below min_data_rate {} after data_timeout_secs {}",
                t.peer,
                (now - at).as_secs_f64(),
                l.min_data_rate,
                l.data_timeout_secs
            ));
        }
    }
    if let Some(why) = why {
        fault(w, conn, kind, why);
    }
}

fn fault(w: &mut World, conn: u64, kind: Kind, why: String) {
    if let Some(t) = w.hostile.sessions.get_mut(&conn) {
        if !t.faulted {
            t.faulted = true;
            w.violation(kind, why);
        }
    }
}

/// At the end: the sessions still open, judged at the end's time, and the
/// liveness of legitimate mail under attack.
pub(crate) fn judge_end(w: &mut World) {
    let now = w.now;
    let conns: Vec<u64> = w.hostile.sessions.keys().copied().collect();
    for c in conns {
        judge(w, c, now);
    }
    let mut found = Vec::new();
    for (id, s) in &w.submissions {
        if let (true, Some(first), Some(acked)) = (s.legit, s.first_try, s.acked_at) {
            let from = first.max(HEAL_AT);
            if acked > from + LIVENESS_BOUND {
                found.push(format!(
                    "liveness under attack: legitimate message {id} first tried at {:.1} s was accepted only at {:.1} s, over {} s",
                    first.as_secs_f64(),
                    acked.as_secs_f64(),
                    LIVENESS_BOUND.as_secs()
                ));
            }
        }
    }
    for f in found {
        w.violation(Kind::Liveness, f);
    }
}
