//! Turmoil's own cost per step, without relayguard: `H` hosts that only
//! sleep, `F` clients that finish at once (turmoil keeps them, and their
//! links, to the end) and one client that sleeps for the simulated time of
//! a seed, with the sim's 20 ms tick. Prints the wall time per step and per
//! host-step, so that the simulation's figures can be set against what
//! turmoil alone costs:
//! `cargo run --release -p relayguard-sim --example turmoil_idle [H] [SECONDS] [REPEATS] [F]`.
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let hosts: u32 = args.next().map_or(15, |a| a.parse().expect("H"));
    let secs: u64 = args.next().map_or(30, |a| a.parse().expect("SECONDS"));
    let repeats: u32 = args.next().map_or(20, |a| a.parse().expect("REPEATS"));
    let finished: u32 = args.next().map_or(0, |a| a.parse().expect("F"));
    let started = Instant::now();
    let mut steps = 0u64;
    for _ in 0..repeats {
        let mut sim = turmoil::Builder::new()
            .simulation_duration(Duration::from_secs(secs + 10))
            .tick_duration(Duration::from_millis(20))
            .build();
        for h in 0..hosts {
            sim.host(format!("10.0.{}.{}", h / 250, h % 250 + 1), || async {
                loop {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
            });
        }
        for f in 0..finished {
            sim.client(format!("10.2.{}.{}", f / 250, f % 250 + 1), async { Ok(()) });
        }
        sim.client("10.1.0.1", async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            Ok(())
        });
        while !sim.step().expect("runs") {
            steps += 1;
        }
    }
    let wall = started.elapsed();
    let per_step = wall.as_secs_f64() / steps as f64;
    println!(
        "{hosts} idle hosts + {finished} finished clients + 1 client, {secs} s simulated, {repeats} runs: {steps} steps in {:.2} s wall = {:.1} µs per step, {:.2} µs per host-step; {:.1} simulated runs per wall second",
        wall.as_secs_f64(),
        per_step * 1e6,
        per_step * 1e6 / f64::from(hosts + finished + 1),
        f64::from(repeats) / wall.as_secs_f64()
    );
}
