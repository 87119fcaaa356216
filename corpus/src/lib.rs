//! The attack corpus on disk: finding transcripts, loading the configuration
//! each one names, and replaying them against the core.
//!
//! The pure replay (one transcript against one session) is
//! `relayguard_core::check::replay`; this crate is the file-system half, the
//! one place that walks the corpus, so that the command, the tests and the
//! fuzz-seed generator see the same files in the same order.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use relayguard_core::check::Bugs;
use relayguard_core::check::replay::{self, Mode, Outcome};
use relayguard_core::check::transcript::{self, Transcript};
use relayguard_core::{Config, ConfigError, Policy};

/// The corpus folder of the checkout this crate was built from: the default
/// for the tests that walk the whole corpus.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Why a corpus file could not be used.
#[derive(Debug)]
pub enum CorpusError {
    /// The file or folder could not be read.
    Io(PathBuf, std::io::Error),
    /// A configuration did not parse or validate (with line and column).
    Config(PathBuf, ConfigError),
    /// A transcript did not parse (with its line).
    Transcript(PathBuf, transcript::ParseError),
    /// A transcript has no `@config` and no configuration was given.
    NoConfig(PathBuf),
}

impl fmt::Display for CorpusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorpusError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            CorpusError::Config(p, e) => write!(f, "{}: {e}", p.display()),
            CorpusError::Transcript(p, e) => write!(f, "{}: {e}", p.display()),
            CorpusError::NoConfig(p) => write!(f, "{}: no @config; pass --config", p.display()),
        }
    }
}

impl std::error::Error for CorpusError {}

/// Every file with this extension under the paths (files are taken as
/// given, folders walked), sorted and without repeats, so that runs are
/// comparable. A path that does not exist is an error, not an empty list.
pub fn collect_ext(paths: &[PathBuf], ext: &str) -> Result<Vec<PathBuf>, CorpusError> {
    let mut out = Vec::new();
    for p in paths {
        walk(p, ext, &mut out).map_err(|e| CorpusError::Io(p.clone(), e))?;
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Every transcript (`.smtp`) under the paths; see [`collect_ext`].
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CorpusError> {
    collect_ext(paths, "smtp")
}

/// Every file directly in `dir` (a fuzz target's seed folder: inputs have
/// no extension), sorted. A folder that does not exist is an error.
pub fn inputs(dir: &Path) -> Result<Vec<PathBuf>, CorpusError> {
    let io = |e| CorpusError::Io(dir.to_path_buf(), e);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let p = entry.map_err(io)?.path();
        if p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

fn walk(p: &Path, ext: &str, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if p.is_dir() {
        for entry in std::fs::read_dir(p)? {
            walk(&entry?.path(), ext, out)?;
        }
    } else if p.extension().is_some_and(|e| e == ext) {
        out.push(p.to_path_buf());
    } else if !p.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file or folder",
        ));
    }
    Ok(())
}

/// Reads and validates a configuration file.
pub fn load_config(path: &Path) -> Result<Config, CorpusError> {
    let text = std::fs::read_to_string(path).map_err(|e| CorpusError::Io(path.to_path_buf(), e))?;
    Config::from_toml(&text).map_err(|e| CorpusError::Config(path.to_path_buf(), e))
}

/// Reads and parses a transcript.
pub fn load_transcript(path: &Path) -> Result<Transcript, CorpusError> {
    let text = std::fs::read_to_string(path).map_err(|e| CorpusError::Io(path.to_path_buf(), e))?;
    transcript::parse(&text).map_err(|e| CorpusError::Transcript(path.to_path_buf(), e))
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
    /// Each transcript against its own `@config`, every expectation checked.
    pub fn new(bugs: Bugs) -> Replayer {
        Replayer {
            audit: None,
            bugs,
            cache: BTreeMap::new(),
        }
    }

    /// Every transcript against this configuration, judged by the oracle
    /// alone (audit mode): reply expectations are the corpus's relay, not
    /// the audited one.
    pub fn audit(config: &Path, bugs: Bugs) -> Result<Replayer, CorpusError> {
        let mut r = Replayer::new(bugs);
        r.audit = Some(r.policy(config)?);
        Ok(r)
    }

    fn policy(&mut self, path: &Path) -> Result<Arc<Policy>, CorpusError> {
        if let Some(p) = self.cache.get(path) {
            return Ok(p.clone());
        }
        let config = load_config(path)?;
        let policy = Arc::new(
            Policy::with_bugs(config, self.bugs).map_err(|e| CorpusError::Config(path.to_path_buf(), e))?,
        );
        self.cache.insert(path.to_path_buf(), policy.clone());
        Ok(policy)
    }

    /// Replays one transcript.
    pub fn run(&mut self, path: &Path) -> Result<Outcome, CorpusError> {
        let t = load_transcript(path)?;
        if let Some(policy) = &self.audit {
            return Ok(replay::replay(&t, policy.clone(), Mode::Audit));
        }
        let rel = t
            .config
            .as_ref()
            .ok_or_else(|| CorpusError::NoConfig(path.to_path_buf()))?;
        let config_path = path.parent().unwrap_or(Path::new(".")).join(rel);
        let policy = self.policy(&config_path)?;
        Ok(replay::replay(&t, policy, Mode::Strict))
    }
}
