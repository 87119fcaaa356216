//! The hostile actors a seed draws: a slowloris (in commands or in DATA),
//! a client that never reads, a password guesser. Each is drawn often
//! enough that the fixed seeds of `cargo test` hold all three.

use std::net::IpAddr;

use super::{Actor, Role, Task};
use crate::rng::Rng;

pub(super) fn draw(
    r: &mut Rng,
    next_ip: &mut impl FnMut(&mut Rng) -> IpAddr,
    local: &[String],
    actors: &mut Vec<Actor>,
) {
    if r.chance(60) {
        actors.push(Actor {
            role: Role::Trickler,
            ip: next_ip(r),
            start: r.millis(0, 10_000),
            tasks: vec![Task::Trickle {
                connections: 2 + r.below(5) as usize,
                in_data: r.chance(50),
                rcpt: format!("postmaster@{}", local[0]),
            }],
            via: None,
        });
    }
    if r.chance(50) {
        actors.push(Actor {
            role: Role::NonReader,
            ip: next_ip(r),
            start: r.millis(0, 5_000),
            tasks: vec![Task::NeverRead],
            via: None,
        });
    }
    if r.chance(50) {
        actors.push(Actor {
            role: Role::Guesser,
            ip: next_ip(r),
            start: r.millis(0, 15_000),
            tasks: vec![Task::Guess {
                tries: 20 + r.below(20) as u32,
            }],
            via: None,
        });
    }
}
