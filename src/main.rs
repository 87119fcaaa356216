//! relayguard: proves that an SMTP relay is not an open relay.

use clap::Parser;

/// No subcommands yet: parsing only handles --help and --version.
#[derive(Parser)]
#[command(name = "relayguard", version, about)]
struct Cli {}

fn main() {
    let Cli {} = Cli::parse();
}
