//! `relayguard lint CONFIG`: what is risky or odd in a configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use relayguard_core::Config;
use relayguard_core::{Severity, lint};

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file (TOML).
    config: PathBuf,
}

/// Exit 0: no error-level finding; 1: some; 2: unreadable or not TOML.
pub fn main(args: Args) -> ExitCode {
    let path = args.config.display();
    let text = match std::fs::read_to_string(&args.config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("relayguard lint: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::parse_toml(&text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("relayguard lint: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut errors = 0;
    // What would stop it from loading, with its place in the file.
    if let Err(e) = Config::from_toml(&text) {
        println!("error: {path}: {e}");
        errors += 1;
    }
    let findings = lint(&config);
    for f in &findings {
        println!("{f}");
    }
    errors += findings.iter().filter(|f| f.severity == Severity::Error).count();
    let warnings = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    println!("lint: {errors} errors, {warnings} warnings");
    if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
