//! Finding transcripts on disk, loading the configuration each one names,
//! and replaying them. The pure replay is in `relayguard_core::replay`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use relayguard_core::Config;
use relayguard_core::Policy;
use relayguard_core::check::buggify::Bugs;
use relayguard_core::check::replay::{self, Mode, Outcome};
use relayguard_core::check::transcript::{self, Transcript};

/// Every `.smtp` file under the paths, sorted, so that runs are comparable.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if p.is_dir() {
        for entry in std::fs::read_dir(p)? {
            walk(&entry?.path(), out)?;
        }
    } else if p.extension().is_some_and(|e| e == "smtp") {
        out.push(p.to_path_buf());
    } else if !p.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file or folder",
        ));
    }
    Ok(())
}

/// Reads and validates a configuration file; errors name the file, and the
/// line and column where there is one.
pub fn load_config(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Config::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn load_transcript(path: &Path) -> Result<Transcript, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    transcript::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Replays transcripts, loading each `@config` once.
pub struct Replayer {
    /// Replaces every transcript's `@config`, and switches to audit mode.
    audit: Option<Arc<Policy>>,
    /// Bugs switched on in every policy, for the tests that prove the
    /// corpus catches them.
    bugs: Bugs,
    cache: BTreeMap<PathBuf, Arc<Policy>>,
}

impl Replayer {
    pub fn new(bugs: Bugs) -> Replayer {
        Replayer {
            audit: None,
            bugs,
            cache: BTreeMap::new(),
        }
    }

    /// Replays everything against this configuration (audit mode).
    pub fn audit(config: &Path, bugs: Bugs) -> Result<Replayer, String> {
        let mut r = Replayer::new(bugs);
        r.audit = Some(r.policy(config)?);
        Ok(r)
    }

    fn policy(&mut self, path: &Path) -> Result<Arc<Policy>, String> {
        if let Some(p) = self.cache.get(path) {
            return Ok(p.clone());
        }
        let config = load_config(path)?;
        let policy =
            Arc::new(Policy::with_bugs(config, self.bugs).map_err(|e| format!("{}: {e}", path.display()))?);
        self.cache.insert(path.to_path_buf(), policy.clone());
        Ok(policy)
    }

    pub fn run(&mut self, path: &Path) -> Result<Outcome, String> {
        let t = load_transcript(path)?;
        if let Some(policy) = &self.audit {
            return Ok(replay::replay(&t, policy.clone(), Mode::Audit));
        }
        let rel = t
            .config
            .as_ref()
            .ok_or_else(|| format!("{}: no @config; pass --config", path.display()))?;
        let config_path = path.parent().unwrap_or(Path::new(".")).join(rel);
        let policy = self.policy(&config_path)?;
        Ok(replay::replay(&t, policy, Mode::Strict))
    }
}
