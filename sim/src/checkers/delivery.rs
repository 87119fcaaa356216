//! The delivery checker: what came out of the relay, judged end to end.
//!
//! Every message a simulated client sends carries an X-Sim-Id, and the
//! client's trust is known from the swarm; so an arrival at a foreign
//! exchanger can be traced back to who sent it, whatever the relay said on
//! the wire. This catches a relay that answers 5xx and relays anyway, and
//! one that lets a second message be smuggled inside the first.

use relayguard_core::check::oracle;

use crate::checkers::Kind;
use crate::world::{Arrival, World};

/// Judges one arrival, as it happens: who submitted it, and was that client
/// trusted to send it where it went?
pub(crate) fn judge_arrival(w: &mut World, arrival: &Arrival, at: &str, rcpts: &[String]) {
    match (&arrival.id, &arrival.bounce_of) {
        (Some(id), _) => match w.submissions.get(id) {
            None => w.violation(
                Kind::Phantom,
                format!("message {id} arrived at {at} but no client submitted it"),
            ),
            Some(s) => {
                let foreign: Vec<&String> = rcpts
                    .iter()
                    .filter(|r| oracle::is_foreign(&w.config, r))
                    .collect();
                if !s.trusted && at.starts_with("exchanger") && !foreign.is_empty() {
                    w.violation(Kind::OpenRelay, format!(
                        "open relay end to end: message {id} from an untrusted client reached {at} for {foreign:?}"
                    ));
                }
            }
        },
        (None, Some(orig)) if !orig.is_empty() && !w.submissions.contains_key(orig) => w.violation(
            Kind::Phantom,
            format!("bounce at {at} of {orig}, which no client submitted"),
        ),
        (None, Some(_)) => {}
        (None, None) => {
            // Corpus attacks carry no X-Sim-Id; a body the relay accepted
            // from a corpus spammer may arrive. Any other is smuggled.
            if !w.corpus_bodies.contains(&arrival.body_hash) {
                w.violation(
                    Kind::Phantom,
                    format!("a message no client submitted (smuggled?) arrived at {at} for {rcpts:?}"),
                );
            }
        }
    }
}

/// After the heal, on a working network: nothing acked is lost (it arrived
/// or bounced), legitimate mail was accepted, and the spool has drained.
pub(crate) fn judge_end(w: &mut World) {
    let mut found = Vec::new();
    // The local domains share one mailbox namespace: alice@ any of them is
    // the same mailbox.
    let local = &w.config.domains.local;
    let mailbox = |addr: &str| match addr.rsplit_once('@') {
        Some((l, d)) if local.iter().any(|x| x.eq_ignore_ascii_case(d)) => format!("{l}@"),
        _ => addr.to_string(),
    };
    for (id, s) in &w.submissions {
        let arrived = |rcpt: Option<&str>| {
            w.arrivals.iter().any(|a| {
                a.bounce_of.as_deref() == Some(id.as_str())
                    || (a.id.as_deref() == Some(id.as_str())
                        && rcpt.is_none_or(|r| a.rcpts.iter().any(|x| mailbox(x) == mailbox(r))))
            })
        };
        if s.legit {
            if let Some(why) = &s.refused {
                found.push((
                    Kind::Liveness,
                    format!("liveness: legitimate message {id} refused: {why}"),
                ));
            } else if !s.acked {
                found.push((
                    Kind::Liveness,
                    format!("liveness: legitimate message {id} never accepted"),
                ));
            }
        }
        if s.acked {
            // A legitimate message must reach every recipient the relay
            // accepted; an attack the relay acked (to a local mailbox, say)
            // must at least have gone somewhere.
            if s.legit {
                for r in &s.accepted {
                    if !arrived(Some(r)) {
                        found.push((
                            Kind::Loss,
                            format!(
                                "loss: message {id} was acked with 250 but never reached {r} nor bounced"
                            ),
                        ));
                    }
                }
            } else if !arrived(None) {
                found.push((
                    Kind::Loss,
                    format!("loss: message {id} was acked with 250 but never delivered nor bounced"),
                ));
            }
        }
    }
    if !w.spool.entries.is_empty() {
        found.push((
            Kind::Stuck,
            format!("{} messages still queued at the end", w.spool.entries.len()),
        ));
    }
    for (kind, text) in found {
        w.violation(kind, text);
    }
}
