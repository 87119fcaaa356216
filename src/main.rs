//! relayguard: proves that an SMTP relay is not an open relay.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

use cmd::{explain, lint, probe, replay, serve, shrink, sim};

#[derive(Parser)]
#[command(name = "relayguard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay attack transcripts against the core and judge them.
    Replay(replay::Args),
    /// Show each decision a session would make, with its reason.
    Explain(explain::Args),
    /// Report risky or odd settings in a configuration.
    Lint(lint::Args),
    /// Run the deterministic network simulation campaign.
    Sim(sim::Args),
    /// Run the relay on real sockets, with a durable spool.
    Serve(serve::Args),
    /// Cut a failing transcript down to the lines that still fail.
    Shrink(shrink::Args),
    /// Audit a live relay with the attack corpus, judged by what arrives.
    Probe(probe::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Replay(args) => replay::main(args),
        Command::Explain(args) => explain::main(args),
        Command::Lint(args) => lint::main(args),
        Command::Sim(args) => sim::main(args),
        Command::Serve(args) => serve::main(args),
        Command::Shrink(args) => shrink::main(args),
        Command::Probe(args) => probe::main(args),
    }
}
