//! `relayguard explain`: the decisions a session would make for one client,
//! sender and set of recipients, each with its reason.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use relayguard_core::parse_path;
use relayguard_core::{Context, Decision, Policy, Refusal};

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file (TOML).
    #[arg(long)]
    config: PathBuf,
    /// The client's IP address.
    #[arg(long)]
    client: IpAddr,
    /// The HELO/EHLO name the client gives.
    #[arg(long, default_value = "client.example")]
    helo: String,
    /// Take the client as authenticated as this user (no password asked).
    #[arg(long)]
    auth: Option<String>,
    /// The sender (with or without <>; <> for the null sender).
    #[arg(long)]
    from: String,
    /// The recipients (with or without <>).
    #[arg(long, required = true, num_args = 1..)]
    to: Vec<String>,
}

fn bracket(s: &str) -> String {
    if s.starts_with('<') {
        s.to_string()
    } else {
        format!("<{s}>")
    }
}

fn refused(step: &str, what: &str, r: &Refusal) {
    println!(
        "{step:<8} {what:<40} REFUSED  {}",
        r.reply.text().replace("\r\n", " ")
    );
    println!("{:<8} {:<40}          because {}", "", "", r.reason);
}

/// Exit 0: every recipient accepted; 1: a step refuses; 2: usage or config error.
pub fn main(args: Args) -> ExitCode {
    let policy = match relayguard_corpus::load_config(&args.config)
        .map_err(|e| e.to_string())
        .and_then(|c| Policy::new(c).map_err(|e| e.to_string()))
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("relayguard explain: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(u) = &args.auth {
        if !policy.config().auth.users.iter().any(|x| &x.name == u) {
            eprintln!("relayguard explain: no user {u:?} in [auth].users");
            return ExitCode::from(2);
        }
    }
    let from = match parse_path(&bracket(&args.from)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("relayguard explain: --from {:?}: {e}", args.from);
            return ExitCode::from(2);
        }
    };
    let mut ctx = Context {
        client: args.client,
        helo: None,
        user: args.auth.as_deref(),
        sender: None,
        accepted: 0,
    };
    if let Err(r) = policy.connect(args.client) {
        refused("connect", &args.client.to_string(), &r);
        return ExitCode::FAILURE;
    }
    println!("{:<8} {:<40} accepted", "connect", args.client);
    if let Err(r) = policy.helo(&ctx, &args.helo) {
        refused("helo", &args.helo, &r);
        return ExitCode::FAILURE;
    }
    ctx.helo = Some(&args.helo);
    println!("{:<8} {:<40} accepted", "helo", args.helo);
    if let Some(u) = &args.auth {
        println!("{:<8} {:<40} accepted (taken as given)", "auth", u);
    }
    if let Err(r) = policy.mail(&ctx, &from) {
        refused("mail", &from.to_string(), &r);
        return ExitCode::FAILURE;
    }
    ctx.sender = Some(&from);
    println!("{:<8} {:<40} accepted", "mail", from.to_string());
    match policy.trust(&ctx) {
        Some(reason) => println!("{:<8} {:<40} may relay: {reason}", "trust", ""),
        None => println!(
            "{:<8} {:<40} may not relay: not in the LAN with relaying on, not authenticated with the relay right",
            "trust", ""
        ),
    }
    let mut all = true;
    for to in &args.to {
        let path = match parse_path(&bracket(to)) {
            Ok(p) => p,
            Err(e) => {
                println!("{:<8} {:<40} REFUSED  501 5.1.3 {e}", "rcpt", to);
                all = false;
                continue;
            }
        };
        match policy.rcpt(&ctx, &path) {
            Decision::Accept { destination, reason } => {
                ctx.accepted += 1;
                println!("{:<8} {:<40} accepted -> {destination}", "rcpt", path.to_string());
                println!("{:<8} {:<40}          because {reason}", "", "");
            }
            Decision::Refuse(r) => {
                refused("rcpt", &path.to_string(), &r);
                all = false;
            }
        }
    }
    if all { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
