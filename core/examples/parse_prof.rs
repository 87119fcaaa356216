//! Parses the benchmark's command mix in a loop, for profilers that count
//! instructions (callgrind): `parse_prof N [relayguard|smtp-proto]`.
use std::hint::black_box;

#[path = "../benches/common/command_mix.rs"]
mod command_mix;
use command_mix::{MIX, parse_relayguard, parse_smtp_proto};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().map_or(100_000, |a| a.parse().expect("N"));
    let which = args.next().unwrap_or_else(|| "relayguard".into());
    let mut ok = 0u32;
    for _ in 0..n {
        for line in MIX {
            let line = black_box(line);
            let good = if which == "smtp-proto" {
                parse_smtp_proto(line)
            } else {
                parse_relayguard(line)
            };
            ok += good as u32;
        }
    }
    println!("{which}: {ok} of {} parsed", n as usize * MIX.len());
}
