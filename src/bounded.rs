//! Bounds on what one visitor can make `relayguard serve` write: log lines
//! per session, and `--record` transcripts per session and in total. A
//! relay on the internet must not be fillable by its clients, whatever they
//! send.

/// Log lines of one session: the first `budget` are written, the rest only
/// counted, and one summary line at the close says how many were left out.
#[derive(Clone, Debug)]
pub struct LineBudget {
    left: u64,
    dropped: u64,
}

impl LineBudget {
    pub fn new(budget: u64) -> LineBudget {
        LineBudget {
            left: budget,
            dropped: 0,
        }
    }

    /// Whether the next line may be written; counts it either way.
    pub fn take(&mut self) -> bool {
        if self.left > 0 {
            self.left -= 1;
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    /// The summary for the close: how many lines were left out, if any.
    pub fn summary(&self) -> Option<String> {
        (self.dropped > 0).then(|| format!("{} more lines of this session not logged", self.dropped))
    }
}

/// The transcripts of a run: each session's is capped by the recorder
/// (`per_session`), and all of them together by `total`. Once the total is
/// spent no new session is recorded, and the log says so once.
#[derive(Clone, Debug)]
pub struct RecordBudget {
    pub per_session: u64,
    total: u64,
    written: u64,
    /// The "total reached" line was logged.
    told: bool,
}

impl RecordBudget {
    pub fn new(per_session: u64, total: u64) -> RecordBudget {
        RecordBudget {
            per_session,
            total,
            written: 0,
            told: false,
        }
    }

    /// The cap for a session starting now, `None` when nothing is left to
    /// record it into: at most `per_session`, at most what is left of the
    /// total.
    pub fn open(&self) -> Option<u64> {
        let left = self.total.saturating_sub(self.written);
        (left > 0).then(|| self.per_session.min(left))
    }

    /// Whether a finished transcript of `len` octets may be written; it is
    /// counted when it may. Sessions recorded at once may together pass
    /// what was left when each opened: the later ones are then dropped.
    pub fn write(&mut self, len: u64) -> bool {
        if self.written + len > self.total {
            return false;
        }
        self.written += len;
        true
    }

    /// True once, when the total is spent: the caller logs it.
    pub fn tell_exhausted(&mut self) -> bool {
        let exhausted = self.open().is_none() && !self.told;
        self.told |= exhausted;
        exhausted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_budget_writes_its_lines_then_counts() {
        let mut b = LineBudget::new(50);
        let written = (0..200_000).filter(|_| b.take()).count();
        assert_eq!(written, 50);
        assert_eq!(
            b.summary().as_deref(),
            Some("199950 more lines of this session not logged")
        );
        let mut quiet = LineBudget::new(50);
        assert!((0..10).all(|_| quiet.take()));
        assert_eq!(quiet.summary(), None);
    }

    #[test]
    fn the_record_total_caps_the_sessions_and_is_told_once() {
        let mut b = RecordBudget::new(1000, 2500);
        assert_eq!(b.open(), Some(1000));
        assert!(b.write(1000));
        assert!(b.write(1000));
        assert_eq!(b.open(), Some(500));
        assert!(!b.write(501));
        assert!(!b.tell_exhausted());
        assert!(b.write(500));
        assert_eq!(b.open(), None);
        assert!(b.tell_exhausted());
        assert!(!b.tell_exhausted());
    }
}
