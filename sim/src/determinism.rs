//! Determinism as a checked property: a seed run twice must give the same
//! trace, line for line. The hash already covers every trace line, every
//! byte the clients sent and the relay's wire octets (TLS records
//! included); this finds where two runs parted.

use relayguard_core::check::buggify::Bugs;

use crate::run::run;

/// Where two runs of one seed differ, if they do: the first differing
/// trace line (numbered from 1) of each run, or the hashes when the traces
/// agree but the client bytes did not.
pub fn first_difference(seed: u64, bugs: Bugs) -> Option<String> {
    let a = run(seed, bugs, true);
    let b = run(seed, bugs, true);
    if a.hash == b.hash && a.trace == b.trace {
        return None;
    }
    let at = a.trace.iter().zip(&b.trace).position(|(x, y)| x != y);
    Some(match at {
        Some(i) => format!(
            "seed {seed}: trace line {} differs:\n  first run:  {}\n  second run: {}",
            i + 1,
            a.trace[i],
            b.trace[i]
        ),
        None if a.trace.len() != b.trace.len() => format!(
            "seed {seed}: one run has {} trace lines, the other {}",
            a.trace.len(),
            b.trace.len()
        ),
        None => format!(
            "seed {seed}: same trace, other client bytes (hash {:016x} then {:016x})",
            a.hash, b.hash
        ),
    })
}
