//! The storage half of the fault plan: crashes at each step of a message's
//! life, restarts with a clock set back or a bad file in the queue, failing
//! disk calls, and a second instance on the spool.

use std::time::Duration;

use crate::disk::{Errno, Junk, Op};
use crate::faults::{CrashPoint, Fault};
use crate::rng::Rng;

/// One to three crashes, each at a drawn point of store → deliver →
/// remove; half of the restarts come back with the clock set back, a
/// quarter with a bad file planted in the queue.
pub(super) fn crashes(r: &mut Rng) -> Vec<(Duration, Fault)> {
    let mut out = Vec::new();
    for _ in 0..1 + r.below(3) {
        let junk = if r.chance(25) {
            Some(*r.pick(&[Junk::Corrupt, Junk::Truncated, Junk::Foreign]))
        } else {
            None
        };
        out.push((
            r.millis(1_000, 25_000),
            Fault::Crash {
                within: r.millis(500, 8_000),
                down: r.millis(100, 3_000),
                at: *r.pick(&CrashPoint::ALL),
                clock_behind: r.chance(50),
                junk,
            },
        ));
    }
    out
}

/// Two to five failing disk calls, each one to three times in a row, and
/// in two seeds of five a second instance started on the spool.
pub(super) fn disk_faults(r: &mut Rng) -> Vec<(Duration, Fault)> {
    let mut out = Vec::new();
    for _ in 0..2 + r.below(4) {
        let op = *r.pick(&Op::ALL);
        // An fsync fails with EIO (or ENOSPC on some file systems), never
        // with EMFILE: the descriptor is already open.
        let errno = match op {
            Op::SpoolFsync | Op::MailFsync | Op::MailDirSync => *r.pick(&[Errno::Eio, Errno::Enospc]),
            _ => *r.pick(&Errno::ALL),
        };
        out.push((
            r.millis(0, 25_000),
            Fault::Disk {
                op,
                errno,
                times: 1 + r.below(3) as u32,
            },
        ));
    }
    if r.chance(40) {
        out.push((
            r.millis(1_000, 20_000),
            Fault::Twin {
                within: r.millis(1_000, 5_000),
            },
        ));
    }
    out
}
