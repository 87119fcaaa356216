//! The delivery checker: what came out of the relay, judged end to end.
//!
//! Every message a simulated client sends carries an X-Sim-Id, and the
//! client's trust is known from the swarm; so an arrival at a foreign
//! exchanger can be traced back to who sent it, whatever the relay said on
//! the wire. This catches a relay that answers 5xx and relays anyway, and
//! one that lets a second message be smuggled inside the first.
//!
//! It also judges what the disk faults may do (`disk.rs`): a body that
//! arrives other than its client sent it is corruption; a message that
//! reaches a recipient more often than the at-least-once window allows is
//! a duplicate. The window: each durable store of the message may arrive
//! once (a client that did not hear the `250` sends again, and both copies
//! are the relay's to deliver), plus once more for each crash that found it
//! delivered to someone while its spool file was still there, and for each
//! round deferred after an exchanger had accepted it (the reply was lost).
//! Nothing else may deliver twice: not a failed `remove`, not a second
//! instance, not a reused queue id.

use relayguard_core::check::oracle;

use crate::checkers::Kind;
use crate::rng::{FNV0, fnv};
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
            Some(_) => {
                if let Some(&sent) = w.bodies.get(id) {
                    if sent != arrival.body_hash {
                        w.violation(Kind::Corruption, format!(
                            "corruption: message {id} arrived at {at} with a body other than its client sent"
                        ));
                    }
                }
                let allowed =
                    w.stored.get(id).copied().unwrap_or(0).max(1) + w.excused.get(id).copied().unwrap_or(0);
                for r in rcpts {
                    let r = r.to_ascii_lowercase();
                    let n = 1 + w
                        .arrivals
                        .iter()
                        .filter(|a| a.id.as_deref() == Some(id.as_str()) && a.rcpts.contains(&r))
                        .count() as u64;
                    if n > allowed {
                        w.violation(Kind::Duplicate, format!(
                            "duplicate: message {id} reached {r} {n} times; the at-least-once window allows {allowed}"
                        ));
                    }
                }
                let s = &w.submissions[id];
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
            // from a corpus spammer may arrive (or is arriving before its
            // reply, delivered into a local mailbox). Any other is smuggled.
            if !w.corpus_bodies.contains(&arrival.body_hash)
                && !corpus_body_being_stored(w, arrival.body_hash)
            {
                w.violation(
                    Kind::Phantom,
                    format!("a message no client submitted (smuggled?) arrived at {at} for {rcpts:?}"),
                );
            }
        }
    }
}

/// Whether a corpus spammer's connection holds a body of this hash that the
/// relay is storing now: one delivered before the reply arrives before the
/// tap's `handed_on` adds it to the corpus bodies.
fn corpus_body_being_stored(w: &World, hash: u64) -> bool {
    w.watches.iter().any(|(&conn, x)| {
        w.client_of(conn).is_some_and(|c| w.corpus_ips.contains(&c)) && fnv(FNV0, &x.body) == hash
    })
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
    if !w.spool.queue.is_empty() {
        found.push((
            Kind::Stuck,
            format!(
                "{} files still queued at the end: {:?}",
                w.spool.queue.len(),
                w.spool.queue.keys().collect::<Vec<_>>()
            ),
        ));
    }
    for (kind, text) in found {
        w.violation(kind, text);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use relayguard_core::Config;

    use crate::checkers::{Kind, Violation};
    use crate::rng::{FNV0, fnv};
    use crate::world::{Submission, World};

    const BODY: &[u8] = b"X-Sim-Id: m1\r\nFrom: <a@b.example>\r\n\r\nHello.\r\n";

    fn world() -> World {
        let mut w = World::new(
            Config::default(),
            BTreeSet::new(),
            false,
            crate::tls::SimTls::new(0, std::iter::empty(), BTreeSet::new()),
        );
        w.submissions.insert(
            "m1".into(),
            Submission {
                trusted: true,
                legit: true,
                acked: true,
                ..Submission::default()
            },
        );
        w.bodies.insert("m1".into(), fnv(FNV0, BODY));
        w.stored.insert("m1".into(), 1);
        w
    }

    fn arrive(w: &mut World, body: &[u8]) {
        w.arrive("exchanger x".into(), vec!["bob@x.example".into()], false, body);
    }

    #[test]
    fn one_arrival_of_the_body_sent_passes() {
        let mut w = world();
        arrive(&mut w, BODY);
        assert_eq!(w.violations, Vec::<Violation>::new());
    }

    #[test]
    fn a_body_other_than_sent_is_corruption() {
        let mut w = world();
        arrive(&mut w, &BODY[..BODY.len() - 4]);
        assert!(w.violations[0].kind == Kind::Corruption, "{:?}", w.violations);
    }

    #[test]
    fn a_second_arrival_is_a_duplicate_unless_the_window_allows_it() {
        let mut w = world();
        arrive(&mut w, BODY);
        arrive(&mut w, BODY);
        assert!(w.violations[0].kind == Kind::Duplicate, "{:?}", w.violations);

        // A crash found it delivered and still queued: one more is allowed,
        // and no more than that.
        let mut w = world();
        arrive(&mut w, BODY);
        w.excused.insert("m1".into(), 1);
        arrive(&mut w, BODY);
        assert_eq!(w.violations, Vec::<Violation>::new());
        arrive(&mut w, BODY);
        assert!(w.violations[0].kind == Kind::Duplicate, "{:?}", w.violations);
    }

    #[test]
    fn a_message_nobody_sent_is_a_phantom() {
        let mut w = world();
        arrive(&mut w, b"X-Sim-Id: m2\r\n\r\nHello.\r\n");
        assert!(w.violations[0].kind == Kind::Phantom, "{:?}", w.violations);
    }
}
