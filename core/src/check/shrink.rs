//! Makes a failing transcript small: removes client lines, then bytes,
//! while the wire oracle still finds the same kind of violation (delta
//! debugging, Zeller's ddmin). A finding of the simulation or a fuzzer is a
//! whole session; what a reader needs is the few lines that matter.
//!
//! Replies are not kept as expectations (the relay that failed wrote them):
//! each becomes an `S:` that accepts any reply, where it still separates
//! two groups of client lines, so that what was pipelined stays pipelined
//! and what waited for a reply still waits.

use std::sync::Arc;

use super::oracle::ViolationKind;
use super::replay::{Mode, replay};
use super::transcript::{Expect, Step, Transcript};
use crate::policy::Policy;

/// A shrunk transcript and what it still shows.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smallest transcript found; its header is the original's.
    pub transcript: Transcript,
    /// The kind of violation it keeps.
    pub kind: ViolationKind,
    /// Client lines before the search.
    pub lines_before: usize,
    /// Client lines after it.
    pub lines_after: usize,
    /// How many replays the search took.
    pub tries: usize,
}

/// One client line and the group (the client lines between two replies)
/// it belongs to.
#[derive(Clone, Debug)]
struct Unit {
    group: usize,
    bytes: Vec<u8>,
}

/// Shrinks `t`, judged against `policy` by the oracle alone. `None` when
/// the transcript shows no violation to begin with.
pub fn shrink(t: &Transcript, policy: Arc<Policy>) -> Option<Shrunk> {
    let kind = replay(t, policy.clone(), Mode::Audit).violations.first()?.kind;
    let units = units(t);
    let lines_before = units.len();
    let mut tries = 0;
    let mut fails = |u: &[Unit]| {
        tries += 1;
        replay(&rebuild(t, u), policy.clone(), Mode::Audit)
            .violations
            .iter()
            .any(|v| v.kind == kind)
    };
    let mut units = ddmin(units, &mut fails);
    // Then the bytes of each line that is left, its line end kept as it
    // was, so that the result still reads as lines.
    for i in 0..units.len() {
        let line = units[i].bytes.clone();
        let end = line_end(&line);
        let (text, ending) = line.split_at(line.len() - end);
        if text.len() > 1024 {
            continue;
        }
        let kept = ddmin(text.to_vec(), &mut |b: &[u8]| {
            let mut u = units.clone();
            u[i].bytes = [b, ending].concat();
            fails(&u)
        });
        units[i].bytes = [&kept[..], ending].concat();
    }
    units.retain(|u| !u.bytes.is_empty());
    let lines_after = units.len();
    Some(Shrunk {
        transcript: rebuild(t, &units),
        kind,
        lines_before,
        lines_after,
        tries,
    })
}

/// How many octets of `line` are its line end: `\r\n`, `\n` or none.
fn line_end(line: &[u8]) -> usize {
    if line.ends_with(b"\r\n") {
        2
    } else {
        usize::from(line.ends_with(b"\n"))
    }
}

/// The client's bytes cut into lines (each keeps its line end), numbered
/// by the group of steps they were sent in.
fn units(t: &Transcript) -> Vec<Unit> {
    let mut out = Vec::new();
    let mut group = 0;
    for s in &t.steps {
        match s {
            Step::Send { bytes, .. } => {
                for line in bytes.split_inclusive(|&b| b == b'\n') {
                    out.push(Unit {
                        group,
                        bytes: line.to_vec(),
                    });
                }
            }
            Step::Reply { .. } | Step::Tls { .. } => group += 1,
        }
    }
    out
}

/// The groups that a TLS handshake comes just before, as [`units`]
/// numbers them.
fn handshakes(t: &Transcript) -> Vec<usize> {
    let mut group = 0;
    let mut out = Vec::new();
    for s in &t.steps {
        match s {
            Step::Send { .. } => {}
            Step::Reply { .. } => group += 1,
            Step::Tls { .. } => {
                group += 1;
                out.push(group);
            }
        }
    }
    out
}

/// The transcript with only these client lines: one raw step per line, an
/// any-reply `S:` after each group that still has lines, so that groups
/// stay apart, and the TLS handshakes that came between them. The header is kept; an attack stays `@expect closed`.
fn rebuild(t: &Transcript, units: &[Unit]) -> Transcript {
    let mut steps = Vec::new();
    let mut last_group = None;
    let tls = handshakes(t);
    for u in units.iter().filter(|u| !u.bytes.is_empty()) {
        if last_group.is_some_and(|g| g != u.group) {
            steps.push(Step::Reply {
                expected: String::new(),
                line: 0,
            });
        }
        // A handshake between the last line kept and this one stays, so
        // that what went over TLS still does.
        if tls
            .iter()
            .any(|&h| last_group.is_none_or(|g| g < h) && h <= u.group)
        {
            steps.push(Step::Tls { line: 0 });
        }
        last_group = Some(u.group);
        steps.push(Step::Send {
            raw: true,
            bytes: u.bytes.clone(),
            line: 0,
        });
    }
    Transcript {
        comments: t.comments.clone(),
        peer: t.peer,
        proxy: t.proxy,
        config: t.config.clone(),
        auth: t.auth.clone(),
        expect: t.expect.or(Some(Expect::Closed)),
        source: t.source.clone(),
        truncated: t.truncated,
        steps,
    }
}

/// The classic ddmin: a smallest subsequence (1-minimal: no single item can
/// go) of `items` on which `fails` still holds, if it holds on `items`.
/// The simulation shrinks a failing seed's actors and faults with it.
pub fn ddmin<T: Clone>(mut items: Vec<T>, fails: &mut impl FnMut(&[T]) -> bool) -> Vec<T> {
    let mut n = 2;
    while items.len() >= 2 {
        let chunk = items.len().div_ceil(n);
        let mut reduced = false;
        for start in (0..items.len()).step_by(chunk) {
            let mut rest = items[..start].to_vec();
            rest.extend_from_slice(&items[(start + chunk).min(items.len())..]);
            if fails(&rest) {
                items = rest;
                n = (n - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if n >= items.len() {
                break;
            }
            n = (n * 2).min(items.len());
        }
    }
    if items.len() == 1 && fails(&[]) {
        items.clear();
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddmin_finds_the_two_items_that_matter() {
        let items: Vec<u32> = (0..40).collect();
        let mut calls = 0;
        let kept = ddmin(items, &mut |s: &[u32]| {
            calls += 1;
            s.contains(&7) && s.contains(&31)
        });
        assert_eq!(kept, vec![7, 31]);
        assert!(calls < 200, "{calls}");
    }

    #[test]
    fn ddmin_keeps_everything_when_everything_matters() {
        let items: Vec<u32> = (0..5).collect();
        let kept = ddmin(items.clone(), &mut |s: &[u32]| s.len() == 5);
        assert_eq!(kept, items);
    }
}
