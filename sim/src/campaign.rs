//! Many seeds on a few threads.
//!
//! A run is single-threaded (turmoil), so a campaign runs whole seeds in
//! parallel, one per thread, each on its own world: nothing is shared but
//! the seed counter and the channel back, so `--jobs` changes the wall time
//! and never a result.

use std::sync::Arc;

use relayguard_core::check::buggify::Bugs;

use crate::report::Report;
use crate::run::run_in;
use crate::swarm::Scenario;

/// Runs seeds on `jobs` threads; `done` is called on the calling thread as
/// each report comes in (in completion order; reports are returned sorted).
pub fn campaign(seeds: &[u64], bugs: Bugs, jobs: usize, done: impl FnMut(&Report)) -> Vec<Report> {
    campaign_in(seeds, bugs, Scenario::Default, jobs, done)
}

/// [`campaign`] with the worlds drawn in `scenario`.
pub fn campaign_in(
    seeds: &[u64],
    bugs: Bugs,
    scenario: Scenario,
    jobs: usize,
    mut done: impl FnMut(&Report),
) -> Vec<Report> {
    let (tx, rx) = std::sync::mpsc::channel();
    let jobs = jobs.max(1).min(seeds.len().max(1));
    let seeds = Arc::new(seeds.to_vec());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..jobs {
        let (tx, seeds, next) = (tx.clone(), seeds.clone(), next.clone());
        handles.push(std::thread::spawn(move || {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&seed) = seeds.get(i) else { break };
                if tx.send(run_in(seed, bugs, scenario, false)).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let mut out = Vec::new();
    for r in rx {
        done(&r);
        out.push(r);
    }
    for h in handles {
        let _ = h.join();
    }
    out.sort_by_key(|r| r.seed);
    out
}
