//! `relayguard sim`: the deterministic simulation campaign.

use std::path::PathBuf;
use std::process::ExitCode;

use relayguard_core::check::buggify::{Bug, Bugs};
use relayguard_sim::{COMMIT, Report, Stats, campaign, run, swarm};

#[derive(clap::Args)]
pub struct Args {
    /// How many seeds to run (seeds 0..N, or the shard's share of them).
    #[arg(long, default_value_t = 200)]
    seeds: u64,
    /// Run one seed and print its configuration, actors, faults and trace.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Seeds run in parallel, one thread each.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Run only shard I of N (seeds s with s % N == I), as `I/N`.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(u64, u64)>,
    /// Switch on an injected bug (trust-routed, lan-check-off, lf-ends-data,
    /// ack-before-store, forget-spool-on-restart); repeatable.
    #[arg(long)]
    buggify: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Where a failing seed's offending session is written.
    #[arg(long, default_value = "corpus/regressions")]
    regressions: PathBuf,
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (i, n) = s.split_once('/').ok_or("expected I/N")?;
    let (i, n): (u64, u64) = (i.parse().map_err(|_| "bad I")?, n.parse().map_err(|_| "bad N")?);
    if n == 0 || i >= n {
        return Err("need 0 <= I < N".into());
    }
    Ok((i, n))
}

pub fn main(args: Args) -> ExitCode {
    let mut bugs = Bugs::NONE;
    for name in &args.buggify {
        match Bug::from_name(name) {
            Some(b) => bugs = bugs.with(b),
            None => {
                eprintln!("relayguard sim: unknown bug {name:?}");
                return ExitCode::from(2);
            }
        }
    }
    let bug_flags: String = args.buggify.iter().map(|b| format!(" --buggify {b}")).collect();
    if let Some(seed) = args.seed {
        let r = run(seed, bugs, true);
        if args.json {
            println!("{}", json(std::slice::from_ref(&r), &bug_flags));
        } else {
            for l in &r.describe {
                println!("{l}");
            }
            for l in &r.trace {
                println!("{l}");
            }
            println!("trace hash {:016x}", r.hash);
            for v in &r.violations {
                println!("VIOLATION: {v}");
            }
            if !r.passed() {
                println!("reproduce: {}  # at commit {COMMIT}", command(r.seed, &bug_flags));
            }
        }
        write_regression(&args, &r, &bug_flags);
        return if r.passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let (i, n) = args.shard.unwrap_or((0, 1));
    let seeds: Vec<u64> = (0..args.seeds).filter(|s| s % n == i).collect();
    let bar = indicatif::ProgressBar::new(seeds.len() as u64);
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds {elapsed} ({per_sec}) {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let start = std::time::Instant::now();
    let mut failed = 0;
    let reports = campaign(&seeds, bugs, args.jobs, |r| {
        if !r.passed() {
            failed += 1;
            bar.set_message(format!("{failed} failing"));
        }
        bar.inc(1);
    });
    bar.finish_and_clear();
    let wall = start.elapsed();
    if args.json {
        println!("{}", json(&reports, &bug_flags));
    } else {
        let t = total(&reports);
        let bad: Vec<&Report> = reports.iter().filter(|r| !r.passed()).collect();
        println!("| seeds | sessions | messages | relay attempts refused | deliveries | violations |");
        println!("|---|---|---|---|---|---|");
        let v: usize = reports.iter().map(|r| r.violations.len()).sum();
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            reports.len(),
            t.sessions,
            t.messages,
            t.relay_refused,
            t.deliveries,
            v
        );
        println!(
            "{:.1} s wall, {:.0} sessions/s, {:.0} seeds/min",
            wall.as_secs_f64(),
            t.sessions as f64 / wall.as_secs_f64(),
            reports.len() as f64 * 60.0 / wall.as_secs_f64()
        );
        for r in &bad {
            println!("seed {} failed: {}", r.seed, r.violations[0]);
            println!(
                "  reproduce: {}  # at commit {COMMIT}",
                command(r.seed, &bug_flags)
            );
        }
    }
    if let Some(r) = reports.iter().find(|r| !r.passed()) {
        write_regression(&args, r, &bug_flags);
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn total(reports: &[Report]) -> Stats {
    let mut t = Stats::default();
    for r in reports {
        t.sessions += r.stats.sessions;
        t.messages += r.stats.messages;
        t.relay_refused += r.stats.relay_refused;
        t.deliveries += r.stats.deliveries;
    }
    t
}

/// Writes the offending session, and the seed's configuration beside it.
fn write_regression(args: &Args, r: &Report, bug_flags: &str) {
    let Some(t) = &r.offending else { return };
    let mut t = t.clone();
    let name = format!("sim-seed-{}{}", r.seed, bug_flags.replace(" --buggify ", "-"));
    let config = args.regressions.join(format!("{name}.toml"));
    t.config = Some(PathBuf::from(format!("{name}.toml")));
    t.comments.insert(
        0,
        format!("found by: {} at commit {COMMIT}", command(r.seed, bug_flags)),
    );
    // The replies recorded are the faulty server's: the oracle judges instead.
    t.comments
        .insert(1, "replies left out: the oracle judges the session".to_string());
    t.steps
        .retain(|s| matches!(s, relayguard_core::check::transcript::Step::Send { .. }));
    t.source = Some(format!("relayguard sim seed {}", r.seed));
    let c = swarm(r.seed, Bugs::NONE).config;
    let res = std::fs::create_dir_all(&args.regressions)
        .and_then(|_| std::fs::write(&config, c.to_toml()))
        .and_then(|_| std::fs::write(args.regressions.join(format!("{name}.smtp")), t.to_text()));
    match res {
        Ok(()) => eprintln!(
            "offending session written to {}",
            args.regressions.join(format!("{name}.smtp")).display()
        ),
        Err(e) => eprintln!("relayguard sim: could not write the regression: {e}"),
    }
}

/// The command that reruns a seed. Printed with [`COMMIT`] beside it: the
/// same seed on other code is another world.
fn command(seed: u64, bug_flags: &str) -> String {
    format!("relayguard sim --seed {seed}{bug_flags}")
}

fn json(reports: &[Report], bug_flags: &str) -> String {
    let t = total(reports);
    serde_json::json!({
        "commit": COMMIT,
        "seeds": reports.len(),
        "sessions": t.sessions,
        "messages": t.messages,
        "relay_refused": t.relay_refused,
        "deliveries": t.deliveries,
        "failing": reports.iter().filter(|r| !r.passed()).map(|r| serde_json::json!({
            "seed": r.seed,
            "violations": r.violations.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
            "reproduce": command(r.seed, bug_flags),
        })).collect::<Vec<_>>(),
        "hashes": reports.iter().map(|r| format!("{:016x}", r.hash)).collect::<Vec<_>>(),
    })
    .to_string()
}
