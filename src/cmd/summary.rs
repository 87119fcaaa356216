//! A campaign's result as one value: what `sim --json` prints, what the
//! table shows, and what `sim merge` joins back together from shards, so
//! that shards run anywhere (a Kubernetes Indexed Job, a GitHub Actions
//! matrix) add up to exactly the report one machine would have printed.

use std::process::ExitCode;

use relayguard_sim::{COMMIT, Report};
use serde::{Deserialize, Serialize};

/// The summary of some seeds of one campaign.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The commit the binary was built from: shards of other code are
    /// other worlds and do not merge.
    pub commit: String,
    /// The injected bugs switched on (`--buggify`), in the order given.
    pub bugs: Vec<String>,
    pub seeds: u64,
    pub sessions: u64,
    pub messages: u64,
    pub relay_refused: u64,
    pub deliveries: u64,
    pub violations: u64,
    /// Of `violations`, those of liveness (legitimate mail that did not get
    /// through); the rest are of safety.
    pub liveness_violations: u64,
    /// How many times each storage fault kind fired, over the seeds.
    pub faults_fired: std::collections::BTreeMap<String, u64>,
    pub failing: Vec<Failing>,
    /// With `--check-determinism`: the seeds whose two runs differed, and
    /// where.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nondeterministic: Vec<Nondeterministic>,
    /// The seeds run, ascending, and their trace hashes in the same order.
    pub seed_list: Vec<u64>,
    pub hashes: Vec<String>,
}

/// One failing seed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failing {
    pub seed: u64,
    /// Simulated milliseconds until the first violation.
    pub first_violation_ms: u64,
    pub violations: Vec<String>,
    pub reproduce: String,
}

/// A seed that gave two different runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nondeterministic {
    pub seed: u64,
    pub difference: String,
}

/// The command that reruns a seed. Printed with [`COMMIT`] beside it: the
/// same seed on other code is another world.
pub fn reproduce(seed: u64, bugs: &[String]) -> String {
    let flags: String = bugs.iter().map(|b| format!(" --buggify {b}")).collect();
    format!("relayguard sim --seed {seed}{flags}")
}

impl Summary {
    pub fn new(reports: &[Report], bugs: &[String]) -> Summary {
        let mut s = Summary {
            commit: COMMIT.to_string(),
            bugs: bugs.to_vec(),
            ..Summary::default()
        };
        let mut reports: Vec<&Report> = reports.iter().collect();
        reports.sort_by_key(|r| r.seed);
        for r in reports {
            s.seeds += 1;
            s.sessions += r.stats.sessions;
            s.messages += r.stats.messages;
            s.relay_refused += r.stats.relay_refused;
            s.deliveries += r.stats.deliveries;
            s.violations += r.violations.len() as u64;
            s.liveness_violations += r.violations.iter().filter(|v| v.kind.is_liveness()).count() as u64;
            for (k, n) in &r.fired {
                *s.faults_fired.entry(k.clone()).or_insert(0) += n;
            }
            if !r.passed() {
                s.failing.push(Failing {
                    seed: r.seed,
                    first_violation_ms: r
                        .violations
                        .iter()
                        .map(|v| v.at.as_millis() as u64)
                        .min()
                        .unwrap_or(0),
                    violations: r.violations.iter().map(|v| v.to_string()).collect(),
                    reproduce: reproduce(r.seed, bugs),
                });
            }
            s.seed_list.push(r.seed);
            s.hashes.push(format!("{:016x}", r.hash));
        }
        s
    }

    /// Joins shard summaries into the one a single run over all their seeds
    /// gives. Refuses shards of different commits or bugs, and a seed run
    /// twice.
    pub fn merge(parts: Vec<Summary>) -> Result<Summary, String> {
        let Some(first) = parts.first() else {
            return Err("no shard to merge".into());
        };
        let mut out = Summary {
            commit: first.commit.clone(),
            bugs: first.bugs.clone(),
            ..Summary::default()
        };
        let mut seeds: Vec<(u64, String)> = Vec::new();
        for p in parts {
            if p.commit != out.commit || p.bugs != out.bugs {
                return Err(format!(
                    "shards differ: commit {} with bugs {:?} beside commit {} with bugs {:?}",
                    p.commit, p.bugs, out.commit, out.bugs
                ));
            }
            if p.seed_list.len() != p.hashes.len() {
                return Err("a shard lists more seeds than hashes".into());
            }
            out.seeds += p.seeds;
            out.sessions += p.sessions;
            out.messages += p.messages;
            out.relay_refused += p.relay_refused;
            out.deliveries += p.deliveries;
            out.violations += p.violations;
            out.liveness_violations += p.liveness_violations;
            for (k, n) in p.faults_fired {
                *out.faults_fired.entry(k).or_insert(0) += n;
            }
            out.failing.extend(p.failing);
            out.nondeterministic.extend(p.nondeterministic);
            seeds.extend(p.seed_list.into_iter().zip(p.hashes));
        }
        seeds.sort();
        if let Some(w) = seeds.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(format!("seed {} is in two shards", w[0].0));
        }
        out.failing.sort_by_key(|f| f.seed);
        out.nondeterministic.sort_by_key(|n| n.seed);
        (out.seed_list, out.hashes) = seeds.into_iter().unzip();
        Ok(out)
    }

    pub fn passed(&self) -> bool {
        self.failing.is_empty() && self.nondeterministic.is_empty()
    }

    pub fn exit_code(&self) -> ExitCode {
        if self.passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    /// The table and the failing seeds with their reproductions.
    pub fn print_table(&self) {
        println!("| seeds | sessions | messages | relay attempts refused | deliveries | violations |");
        println!("|---|---|---|---|---|---|");
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            self.seeds, self.sessions, self.messages, self.relay_refused, self.deliveries, self.violations
        );
        println!(
            "safety: {} violations; liveness: {} violations",
            self.violations - self.liveness_violations,
            self.liveness_violations
        );
        if !self.faults_fired.is_empty() {
            let fired: Vec<String> = self
                .faults_fired
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            println!("faults and actors fired: {}", fired.join(", "));
        }
    }

    pub fn print_failing(&self) {
        for f in &self.failing {
            println!(
                "seed {} failed: {}",
                f.seed,
                f.violations.first().map_or("", |v| v)
            );
            println!("  reproduce: {}  # at commit {}", f.reproduce, self.commit);
        }
        for n in &self.nondeterministic {
            println!("NONDETERMINISTIC {}", n.difference);
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a summary is plain data")
    }
}
