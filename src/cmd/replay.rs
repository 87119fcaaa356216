//! `relayguard replay`: runs transcripts against a fresh core session each,
//! checks their expectations and the oracle, and prints a table.

use std::path::PathBuf;
use std::process::ExitCode;

use relayguard_core::check::buggify::Bugs;
use relayguard_core::check::replay::Outcome;
use relayguard_corpus::{Replayer, collect};

#[derive(clap::Args)]
pub struct Args {
    /// Transcripts or folders of them (`.smtp`, searched recursively).
    #[arg(default_value = "corpus")]
    paths: Vec<PathBuf>,
    /// Replay everything against this configuration instead of each
    /// transcript's `@config`: replies are not checked, only the oracle
    /// judges (audit mode).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Send the transcripts over TCP to this live server instead of the
    /// core (needs --config: the oracle judges with that configuration).
    #[arg(long, requires = "config")]
    target: Option<std::net::SocketAddr>,
    /// With --target: the local address to connect from (e.g. 127.0.0.3 to
    /// be an outsider on loopback).
    #[arg(long, requires = "target")]
    source: Option<std::net::IpAddr>,
    /// With --target: seconds to wait for each reply.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

/// One transcript's result, for the table and the JSON.
struct Row {
    path: PathBuf,
    outcome: Result<Outcome, String>,
}

pub fn main(args: Args) -> ExitCode {
    let files = match collect(&args.paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("relayguard replay: {e}");
            return ExitCode::from(2);
        }
    };
    if files.is_empty() {
        eprintln!("relayguard replay: no .smtp transcripts under {:?}", args.paths);
        return ExitCode::from(2);
    }
    if let Some(target) = args.target {
        return remote(&args, files, target);
    }
    let replayer = match &args.config {
        Some(p) => Replayer::audit(p, Bugs::NONE),
        None => Ok(Replayer::new(Bugs::NONE)),
    };
    let mut replayer = match replayer {
        Ok(r) => r,
        Err(e) => {
            eprintln!("relayguard replay: {e}");
            return ExitCode::from(2);
        }
    };
    let rows: Vec<Row> = files
        .into_iter()
        .map(|path| {
            let outcome = replayer.run(&path).map_err(|e| e.to_string());
            Row { path, outcome }
        })
        .collect();
    let failed = rows
        .iter()
        .filter(|r| !r.outcome.as_ref().is_ok_and(Outcome::passed))
        .count();
    if args.json {
        print_json(&rows);
    } else {
        print_table(&rows);
        println!("replay: {} passed, {} failed", rows.len() - failed, failed);
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Replays over TCP against a live server.
fn remote(args: &Args, files: Vec<PathBuf>, target: std::net::SocketAddr) -> ExitCode {
    let config_path = args
        .config
        .as_ref()
        .expect("clap requires --config with --target");
    let config = match relayguard_corpus::load_config(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("relayguard replay: {e}");
            return ExitCode::from(2);
        }
    };
    let timeout = std::time::Duration::from_secs(args.timeout.max(1));
    let rows: Vec<Row> = files
        .into_iter()
        .map(|path| {
            let outcome = relayguard_corpus::load_transcript(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| relayguard::remote::replay(&t, &config, target, args.source, timeout));
            Row { path, outcome }
        })
        .collect();
    report(args, &rows)
}

fn report(args: &Args, rows: &[Row]) -> ExitCode {
    let failed = rows
        .iter()
        .filter(|r| !r.outcome.as_ref().is_ok_and(Outcome::passed))
        .count();
    if args.json {
        print_json(rows);
    } else {
        print_table(rows);
        println!("replay: {} passed, {} failed", rows.len() - failed, failed);
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_table(rows: &[Row]) {
    let width = rows
        .iter()
        .map(|r| r.path.display().to_string().len())
        .max()
        .unwrap_or(10)
        .min(70);
    println!("{:<width$}  {:<6}  first failure", "transcript", "result");
    for r in rows {
        let (result, detail) = match &r.outcome {
            Ok(o) if o.passed() => ("ok", truncated_note(o)),
            Ok(o) => ("FAIL", o.first_failure().unwrap_or_default()),
            Err(e) => ("ERROR", e.clone()),
        };
        println!("{:<width$}  {:<6}  {}", r.path.display(), result, detail);
    }
}

/// For a transcript whose recording was capped (`@truncated`): only its
/// beginning was replayed, and a pass says nothing about the rest.
fn truncated_note(o: &Outcome) -> String {
    o.truncated
        .map(|n| format!("(recording truncated after {n} octets: only its beginning was replayed)"))
        .unwrap_or_default()
}

fn print_json(rows: &[Row]) {
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| match &r.outcome {
            Ok(o) => serde_json::json!({
                "transcript": r.path.display().to_string(),
                "passed": o.passed(),
                "mismatches": o.mismatches.iter().map(|m| serde_json::json!({
                    "line": m.line, "expected": m.expected, "got": m.got,
                })).collect::<Vec<_>>(),
                "violations": o.violations.iter().map(|v| serde_json::json!({
                    "kind": v.kind.to_string(), "command": v.command,
                    "recipient": v.recipient, "why": v.why,
                })).collect::<Vec<_>>(),
                "expectation": o.expectation,
                "relayed": o.stats.relayed,
                "relay_refused": o.stats.relay_refused,
                "messages_accepted": o.stats.messages_accepted,
                "truncated": o.truncated,
            }),
            Err(e) => serde_json::json!({
                "transcript": r.path.display().to_string(), "passed": false, "error": e,
            }),
        })
        .collect();
    let failed = items.iter().filter(|i| i["passed"] != true).count();
    let doc = serde_json::json!({
        "passed": items.len() - failed, "failed": failed, "transcripts": items,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).expect("JSON of plain values")
    );
}
