//! `relayguard shrink TRANSCRIPT`: the few client lines of a failing
//! transcript that still make the wire oracle fail the same way.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use relayguard_core::Policy;
use relayguard_core::check::buggify::{Bug, Bugs};
use relayguard_core::check::shrink;
use relayguard_corpus::{load_config, load_transcript};

#[derive(clap::Args)]
pub struct Args {
    /// The failing transcript (a sim or fuzz finding, a recorded session).
    transcript: PathBuf,
    /// Judge against this configuration instead of the transcript's
    /// `@config`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Switch on an injected bug (the one the finding was made with);
    /// repeatable.
    #[arg(long)]
    buggify: Vec<String>,
    /// Where to write the result (default: beside the input, `NAME-min.smtp`).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Exit 0: written; 1: the transcript shows no violation to shrink; 2: bad
/// input.
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
    let mut t = load_transcript(&args.transcript).map_err(|e| e.to_string())?;
    let dir = args.transcript.parent().unwrap_or(Path::new("."));
    let config_path = match (&args.config, &t.config) {
        (Some(c), _) => c.clone(),
        (None, Some(rel)) => dir.join(rel),
        (None, None) => {
            return Err(format!(
                "{}: no @config; pass --config",
                args.transcript.display()
            ));
        }
    };
    let config = load_config(&config_path).map_err(|e| e.to_string())?;
    let policy = Arc::new(Policy::with_bugs(config.clone(), bugs).map_err(|e| e.to_string())?);
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args.transcript.file_stem().unwrap_or_default().to_string_lossy();
        dir.join(format!("{stem}-min.smtp"))
    });
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
    let Some(s) = shrink(&t, policy) else {
        println!("{}: no violation to shrink", args.transcript.display());
        return Ok(ExitCode::FAILURE);
    };
    let mut result = s.transcript;
    result.comments.insert(
        0,
        format!(
            "shrunk by relayguard shrink from {} ({} client lines to {}): still {}",
            args.transcript.file_name().unwrap_or_default().to_string_lossy(),
            s.lines_before,
            s.lines_after,
            s.kind
        ),
    );
    std::fs::write(&out, result.to_text()).map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "{} client lines to {} in {} replays, still {}: {}",
        s.lines_before,
        s.lines_after,
        s.tries,
        s.kind,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
