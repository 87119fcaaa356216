//! Parses the benchmark's command mix in a loop, for profilers that count
//! instructions (callgrind): `parse_prof N [relayguard|smtp-proto]`.
use std::hint::black_box;

#[path = "../benches/common/command_mix.rs"]
mod command_mix;
use command_mix::MIX;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().map_or(100_000, |a| a.parse().expect("N"));
    let which = args.next().unwrap_or_else(|| "relayguard".into());
    let mut ok = 0u32;
    for _ in 0..n {
        for line in MIX {
            let good = if which == "smtp-proto" {
                smtp_proto::Request::parse(&mut black_box(line).iter()).is_ok()
            } else {
                // As the benchmark does: the line's end found, then parsed.
                let l = black_box(line);
                let end = relayguard_core::line_end(l).unwrap_or(l.len());
                let l = &l[..end];
                let l = l.strip_suffix(b"\r").unwrap_or(l);
                relayguard_core::parse_command(l).is_ok()
            };
            ok += good as u32;
        }
    }
    println!("{which}: {ok} of {} parsed", n as usize * MIX.len());
}
