//! The queue: recovery after a restart, and each entry's rounds of delivery
//! with backoff until every recipient is delivered or bounced.

use std::rc::Rc;

use relayguard_core::check::buggify::Bug;

use crate::delivery::Round;
use crate::node::Node;
use crate::ports::{Entry, Mailboxes, Net, Resolver, Spool, Tap};

impl<N: Net, S: Spool, R: Resolver, M: Mailboxes, T: Tap> Node<N, S, R, M, T> {
    /// Resumes delivery of everything in the spool: each good entry is
    /// delivered, each unreadable file quarantined, whatever the others
    /// are. A listing that fails for a passing reason (no descriptors, an
    /// I/O error) is tried again after a backoff; nothing is quarantined
    /// for it.
    pub async fn recover(self: &Rc<Self>) {
        let entries = if self.bug(Bug::ForgetSpoolOnRestart) {
            Vec::new() // BUG forget-spool-on-restart: recovery skips the spool
        } else {
            let mut tries = 0;
            loop {
                match self.spool.list().await {
                    Ok(v) => break v,
                    Err(e) => {
                        tries += 1;
                        self.note(&format!("recovery deferred: {e}"));
                        tokio::time::sleep(self.config.backoff(tries)).await;
                    }
                }
            }
        };
        if self.bug(Bug::RecoverAllOrNothing) && entries.iter().any(|e| e.is_err()) {
            // BUG recover-all-or-nothing: one unreadable file hides the rest
            self.note("recovery failed: an unreadable file");
            return;
        }
        for listed in entries {
            match listed {
                Ok((id, entry)) => {
                    self.note(&format!("recovered {id}"));
                    tokio::task::spawn_local(self.clone().deliver(id, entry));
                }
                Err(bad) => {
                    self.note(&format!("unreadable {}: {}", bad.name, bad.reason));
                    self.spool.quarantine(&bad).await;
                }
            }
        }
    }

    /// Serves one queued entry until every recipient is delivered or
    /// bounced. Only the envelope stays in memory between rounds: each
    /// round reads the body back from the spool, and at most
    /// `max_deliveries` rounds (bodies) are under way at once.
    pub(crate) async fn deliver(self: Rc<Self>, id: String, mut entry: Entry) {
        entry.message.body = Vec::new();
        loop {
            let permit = self.deliveries.acquire().await;
            let message = match self.spool.body(&id).await {
                Ok(body) => Some(relayguard_core::Message {
                    body,
                    ..entry.message.clone()
                }),
                Err(e) => {
                    // The file is still there: try again at the next round.
                    self.note(&format!("deferred {id}: reading the body: {e}"));
                    None
                }
            };
            let Round { mut kept, mut failed } = match &message {
                Some(m) => self.round(&id, &mut entry, m).await,
                None => Round {
                    kept: std::mem::take(&mut entry.pending),
                    failed: Vec::new(),
                },
            };
            if !kept.is_empty() && self.config.age(entry.attempts + 1) > self.config.max_queue_age {
                failed.extend(kept.drain(..).map(|r| (r, "queued too long".to_string())));
            }
            let bounced = match (&message, failed.is_empty()) {
                (_, true) => true,
                (Some(m), false) => self.bounce(&id, m, &failed).await,
                (None, false) => self.bounce(&id, &entry.message, &failed).await,
            };
            drop(message);
            drop(permit);
            if !bounced {
                // The bounce could not be stored (a full disk, say): the
                // failed recipients stay queued, so that the next round
                // fails them again and bounces then. Dropping them here
                // would lose the only news the sender gets.
                kept.extend(failed.into_iter().map(|(r, _)| r));
            }
            entry.pending = kept;
            if entry.pending.is_empty() {
                self.forget(&id).await;
                return;
            }
            entry.attempts += 1;
            if let Err(e) = self.spool.update(&id, &entry).await {
                // The file still names recipients served since: after a
                // crash they would be served again (the at-least-once
                // window). The next round writes the entry again.
                self.note(&format!("update {id} failed: {e}"));
            }
            tokio::time::sleep(self.config.backoff(entry.attempts)).await;
        }
    }

    /// Removes a finished entry from the spool, trying again after a
    /// backoff until the spool takes it: a file left behind would be
    /// delivered again at the next restart.
    async fn forget(&self, id: &str) {
        let mut tries = 0;
        while let Err(e) = self.spool.remove(id).await {
            tries += 1;
            self.note(&format!("remove {id} failed: {e}"));
            tokio::time::sleep(self.config.backoff(tries)).await;
        }
        self.note(&format!("done {id}"));
    }
}
