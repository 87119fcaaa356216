//! `relayguard sim`: the deterministic simulation campaign.

use std::path::PathBuf;
use std::process::ExitCode;

use relayguard_core::check::buggify::{Bug, Bugs};
use relayguard_sim::{COMMIT, Report, Scenario, campaign_in, first_difference, run_in, swarm_in};

use super::summary::{Nondeterministic, Summary, reproduce};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// How many seeds to run (seeds 0..N, or the shard's share of them).
    #[arg(long, default_value_t = 200)]
    seeds: u64,
    /// The first seed of the range: seeds FROM..FROM+N.
    #[arg(long, default_value_t = 0, conflicts_with = "seed")]
    from: u64,
    /// Run one seed and print its configuration, actors, faults and trace.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Seeds run in parallel, one thread each.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Run only shard I of N (seeds s with s % N == I), as `I/N`.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(u64, u64)>,
    /// Switch on an injected bug by name (docs/simulation.md lists them);
    /// repeatable.
    #[arg(long)]
    buggify: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Run every seed twice and fail on any difference between the two
    /// runs (the trace hash, then the first differing trace line).
    #[arg(long)]
    check_determinism: bool,
    /// Draw every seed's world with its proxy set up the Docker way: it
    /// forwards without a header from an address inside the LAN, so every
    /// client looks local. These seeds must fail (the relay is open); the
    /// scenario shows that the checkers see it. Not part of the default
    /// campaign.
    #[arg(long, conflicts_with = "check_determinism")]
    misconfigured_proxy: bool,
    /// Where a failing seed's offending session is written.
    #[arg(long, default_value = "corpus/regressions")]
    regressions: PathBuf,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Join the `--json` outputs of shards (`--shard I/N`) into the report
    /// one run over all their seeds gives: same JSON, table and exit code.
    Merge {
        /// The shards' JSON files.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
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
    if let Some(Action::Merge { shards, json }) = &args.action {
        return merge(shards, *json);
    }
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
    let scenario = scenario(&args);
    if let Some(seed) = args.seed {
        let r = run_in(seed, bugs, scenario, true);
        if args.json {
            println!(
                "{}",
                Summary::new(std::slice::from_ref(&r), &args.buggify).to_json()
            );
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
                println!(
                    "reproduce: {}{}  # at commit {COMMIT}",
                    reproduce(r.seed, &args.buggify),
                    scenario_flag(&args)
                );
            }
        }
        write_regression(&args, &r);
        return if r.passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let (i, n) = args.shard.unwrap_or((0, 1));
    let end = args.from.saturating_add(args.seeds);
    let seeds: Vec<u64> = (args.from..end).filter(|s| s % n == i).collect();
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
    let reports = campaign_in(&seeds, bugs, scenario, args.jobs, |r| {
        if !r.passed() {
            failed += 1;
            bar.set_message(format!("{failed} failing"));
        }
        bar.inc(1);
    });
    let mut summary = Summary::new(&reports, &args.buggify);
    if args.check_determinism {
        bar.set_message("second runs");
        let again = campaign_in(&seeds, bugs, scenario, args.jobs, |_| {});
        for (a, b) in reports.iter().zip(&again) {
            if a.hash != b.hash {
                let difference = first_difference(a.seed, bugs)
                    .unwrap_or_else(|| format!("seed {}: hash {:016x} then {:016x}", a.seed, a.hash, b.hash));
                summary.nondeterministic.push(Nondeterministic {
                    seed: a.seed,
                    difference,
                });
            }
        }
    }
    bar.finish_and_clear();
    let wall = start.elapsed();
    if args.json {
        println!("{}", summary.to_json());
    } else {
        summary.print_table();
        println!(
            "{:.1} s wall, {:.0} sessions/s, {:.0} seeds/min",
            wall.as_secs_f64(),
            summary.sessions as f64 / wall.as_secs_f64(),
            reports.len() as f64 * 60.0 / wall.as_secs_f64()
        );
        summary.print_failing();
        if args.misconfigured_proxy {
            println!("(seeds of the misconfigured-proxy scenario: reproduce with --misconfigured-proxy)");
        }
    }
    if let Some(r) = reports.iter().find(|r| !r.passed()) {
        write_regression(&args, r);
    }
    summary.exit_code()
}

/// Writes the offending session, and the seed's configuration beside it.
fn write_regression(args: &Args, r: &Report) {
    let Some(t) = &r.offending else { return };
    let mut t = t.clone();
    let bugs: String = args.buggify.iter().map(|b| format!("-{b}")).collect();
    let name = format!("sim-seed-{}{bugs}", r.seed);
    let config = args.regressions.join(format!("{name}.toml"));
    t.config = Some(PathBuf::from(format!("{name}.toml")));
    t.comments.insert(
        0,
        format!(
            "found by: {}{} at commit {COMMIT}",
            reproduce(r.seed, &args.buggify),
            scenario_flag(args)
        ),
    );
    // The replies recorded are the faulty server's: the oracle judges instead.
    t.comments
        .insert(1, "replies left out: the oracle judges the session".to_string());
    t.steps
        .retain(|s| matches!(s, relayguard_core::check::transcript::Step::Send { .. }));
    t.source = Some(format!("relayguard sim seed {}", r.seed));
    let c = swarm_in(r.seed, Bugs::NONE, scenario(args)).config;
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

fn scenario(args: &Args) -> Scenario {
    if args.misconfigured_proxy {
        Scenario::MisconfiguredProxy
    } else {
        Scenario::Default
    }
}

/// The flag that draws the seed's world again, if it is not the default's.
fn scenario_flag(args: &Args) -> &'static str {
    if args.misconfigured_proxy {
        " --misconfigured-proxy"
    } else {
        ""
    }
}

fn merge(paths: &[PathBuf], json: bool) -> ExitCode {
    let mut parts = Vec::new();
    for p in paths {
        let part = std::fs::read_to_string(p)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str::<Summary>(&text).map_err(|e| e.to_string()));
        match part {
            Ok(s) => parts.push(s),
            Err(e) => {
                eprintln!("relayguard sim merge: {}: {e}", p.display());
                return ExitCode::from(2);
            }
        }
    }
    let summary = match Summary::merge(parts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("relayguard sim merge: {e}");
            return ExitCode::from(2);
        }
    };
    if json {
        println!("{}", summary.to_json());
    } else {
        summary.print_table();
        summary.print_failing();
    }
    summary.exit_code()
}
