//! The session's clock: deadlines, not idle timers. A command line must be
//! complete within `command_timeout_secs` of its first octet, DATA within
//! its grace plus what `min_data_rate` allows, the whole session within
//! `session_timeout_secs`; octets that trickle in move none of them. Time
//! is only ever the `now` the driver passes in.

use std::time::Duration;

use super::{MAX_PIPELINED, Session, State};
use crate::Now;
use crate::check::Bug;
use crate::reply::Enhanced;

impl Session {
    /// The next instant at which [`Session::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Now> {
        self.deadline
    }

    /// Tells the session that the time is `now`. At or after the deadline
    /// of [`Session::poll_timeout`] it answers `421 4.4.2` and closes;
    /// before it, nothing happens, so an early wake-up is harmless.
    ///
    /// The deadline is the earliest of: `limits.command_timeout_secs` after
    /// the first octet of a command line not yet complete (or after the
    /// last reply, when no line has begun); in DATA, `data_timeout_secs`
    /// after the `354` plus a second per `min_data_rate` octets received;
    /// and `session_timeout_secs` after the session began. There is none
    /// while a message waits to be stored. Octets that trickle in do not
    /// move it.
    pub fn handle_timeout(&mut self, now: Now) {
        self.last_now = now;
        if self.deadline.is_some_and(|d| now >= d) {
            self.reply(421, Enhanced(4, 4, 2), "Error: timeout exceeded");
            self.close();
        }
    }

    /// After input was worked through at `now`, with `lines` the count of
    /// lines taken before: the anchors of the deadlines, and the limits of
    /// what is held.
    pub(super) fn after_input(&mut self, now: Now, lines: u64) {
        let partial = match self.state {
            // The handshake must be done within the command timeout of
            // the STARTTLS line, however many octets come meanwhile.
            State::Discard | State::StartTls => true,
            State::Command | State::Auth(_) => !self.input.is_empty() && !self.has_held_commands(),
            _ => false,
        };
        if !partial {
            self.line_started = None;
        } else if self.line_started.is_none() || self.lines != lines {
            self.line_started = Some(now);
        }
        if matches!(self.state, State::Data(_)) {
            self.data_started.get_or_insert(now);
        } else {
            self.data_started = None;
            self.data_octets = 0;
        }
        if matches!(self.state, State::Closed) {
            self.input = Vec::new();
        } else if matches!(self.state, State::AwaitStore) && self.input.len() > MAX_PIPELINED {
            // Only commands may follow the end of data before its reply, and
            // never this many: a client that floods here is not waiting.
            self.reply(554, Enhanced(5, 5, 0), "Error: SMTP protocol synchronization");
            self.close();
            self.input = Vec::new();
        }
        self.arm(now);
    }

    /// Sets the deadline from its anchors (see [`Session::handle_timeout`]).
    pub(super) fn arm(&mut self, now: Now) {
        let limits = &self.policy.config().limits;
        // BUG idle-timer-rearms: every octet starts the clock again.
        let idle = self.policy.bugs().has(Bug::IdleTimerRearms);
        let phase = match self.state {
            State::Data(_) => {
                let start = if idle {
                    now
                } else {
                    self.data_started.unwrap_or(now)
                };
                let credit = match limits.min_data_rate {
                    0 => Duration::ZERO,
                    _ if idle => Duration::ZERO,
                    rate => Duration::from_millis(self.data_octets.saturating_mul(1000) / rate),
                };
                start + Duration::from_secs(limits.data_timeout_secs) + credit
            }
            State::Closed | State::AwaitStore => {
                self.deadline = None;
                return;
            }
            _ => {
                let start = if idle {
                    now
                } else {
                    self.line_started.unwrap_or(now)
                };
                start + Duration::from_secs(limits.command_timeout_secs)
            }
        };
        let lifetime = self.started + Duration::from_secs(limits.session_timeout_secs);
        self.deadline = Some(phase.min(lifetime));
    }
}
