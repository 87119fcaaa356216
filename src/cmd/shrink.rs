//! `relayguard shrink TRANSCRIPT`: the few client lines of a failing
//! transcript that still make the wire oracle fail the same way.
//! `relayguard shrink --seed N`: the few actors and faults of a failing
//! seed that still make it fail, then its offending session shrunk too.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use relayguard_core::Policy;
use relayguard_core::check::buggify::{Bug, Bugs};
use relayguard_core::check::{Shrunk, shrink};
use relayguard_corpus::{load_config, load_transcript};
use relayguard_sim::shrink_seed;

#[derive(clap::Args)]
pub struct Args {
    /// The failing transcript (a sim or fuzz finding, a recorded session).
    #[arg(required_unless_present = "seed", conflicts_with = "seed")]
    transcript: Option<PathBuf>,
    /// Shrink a failing simulation seed instead (with its --buggify flags).
    #[arg(long)]
    seed: Option<u64>,
    /// Judge against this configuration instead of the transcript's
    /// `@config`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Switch on an injected bug (the one the finding was made with);
    /// repeatable.
    #[arg(long)]
    buggify: Vec<String>,
    /// Where to write the result (default:
    /// `corpus/regressions/NAME-min.smtp`; for a seed,
    /// `corpus/regressions/sim-seed-N[-BUG]-min.smtp`).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Exit 0: shrunk (and written); 1: nothing fails, nothing to shrink;
/// 2: bad input.
pub fn main(args: Args) -> ExitCode {
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("relayguard shrink: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<ExitCode, String> {
    let mut bugs = Bugs::NONE;
    for name in &args.buggify {
        bugs = bugs.with(Bug::from_name(name).ok_or_else(|| format!("unknown bug {name:?}"))?);
    }
    match (&args.transcript, args.seed) {
        (Some(path), _) => transcript(args, path, bugs),
        (None, Some(seed)) => seed_world(args, seed, bugs),
        (None, None) => Err("give a transcript or --seed".into()),
    }
}

fn transcript(args: &Args, path: &Path, bugs: Bugs) -> Result<ExitCode, String> {
    let mut t = load_transcript(path).map_err(|e| e.to_string())?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let config_path = match (&args.config, &t.config) {
        (Some(c), _) => c.clone(),
        (None, Some(rel)) => dir.join(rel),
        (None, None) => return Err(format!("{}: no @config; pass --config", path.display())),
    };
    let config = load_config(&config_path).map_err(|e| e.to_string())?;
    let policy = Arc::new(Policy::with_bugs(config.clone(), bugs).map_err(|e| e.to_string())?);
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        PathBuf::from(format!("corpus/regressions/{stem}-min.smtp"))
    });
    let Some(s) = shrink(&t, policy) else {
        println!("{}: no violation to shrink", path.display());
        return Ok(ExitCode::FAILURE);
    };
    // The result names its configuration relative to where it is written:
    // the same file when it is beside it, else a copy beside the result.
    let out_dir = out.parent().unwrap_or(Path::new("."));
    if config_path.parent().unwrap_or(Path::new(".")) == out_dir {
        t.config = config_path.file_name().map(PathBuf::from);
    } else {
        let copy = out.with_extension("toml");
        std::fs::write(&copy, config.to_toml()).map_err(|e| format!("{}: {e}", copy.display()))?;
        t.config = copy.file_name().map(PathBuf::from);
    }
    let mut s = s;
    s.transcript.config = t.config;
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    write(&out, s, &name)?;
    Ok(ExitCode::SUCCESS)
}

fn seed_world(args: &Args, seed: u64, bugs: Bugs) -> Result<ExitCode, String> {
    let Some(s) = shrink_seed(seed, bugs) else {
        println!("seed {seed} passes: nothing to shrink");
        return Ok(ExitCode::FAILURE);
    };
    println!(
        "seed {seed}: {} of {} actors and {} of {} faults still fail with {} ({} runs)",
        s.swarm.actors.len(),
        s.actors_before,
        s.swarm.faults.len(),
        s.faults_before,
        s.kind,
        s.tries
    );
    for l in &s.report.describe {
        println!("{l}");
    }
    for v in &s.report.violations {
        println!("VIOLATION: {v}");
    }
    let Some(mut t) = s.report.offending.clone() else {
        return Ok(ExitCode::SUCCESS);
    };
    // The offending session, shrunk in turn and written with the seed's
    // configuration, as `sim` writes its findings.
    let bug_names: String = args.buggify.iter().map(|b| format!("-{b}")).collect();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("corpus/regressions/sim-seed-{seed}{bug_names}-min.smtp")));
    let config = out.with_extension("toml");
    t.config = config.file_name().map(PathBuf::from);
    t.source = Some(format!("relayguard sim seed {seed}"));
    let policy = Arc::new(Policy::with_bugs(s.swarm.config.clone(), bugs).map_err(|e| e.to_string())?);
    let Some(small) = shrink(&t, policy) else {
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::write(&config, s.swarm.config.to_toml()).map_err(|e| format!("{}: {e}", config.display()))?;
    write(&out, small, &format!("relayguard sim --seed {seed}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Writes a shrunk transcript, saying what it came from and what it keeps.
fn write(out: &Path, s: Shrunk, from: &str) -> Result<(), String> {
    let mut result = s.transcript;
    result.comments.insert(
        0,
        format!(
            "shrunk by relayguard shrink from {from} ({} client lines to {}): still {}",
            s.lines_before, s.lines_after, s.kind
        ),
    );
    std::fs::write(out, result.to_text()).map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "{} client lines to {} in {} replays, still {}: {}",
        s.lines_before,
        s.lines_after,
        s.tries,
        s.kind,
        out.display()
    );
    Ok(())
}
