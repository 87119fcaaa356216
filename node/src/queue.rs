//! The queue: recovery after a restart, and each entry's rounds of delivery
//! with backoff until every recipient is delivered or bounced.

use std::rc::Rc;

use relayguard_core::check::buggify::Bug;

use crate::delivery::Round;
use crate::node::Node;
use crate::ports::{Entry, Mailboxes, Net, Resolver, Spool, Tap};

impl<N: Net, S: Spool, R: Resolver, M: Mailboxes, T: Tap> Node<N, S, R, M, T> {
    /// Resumes delivery of everything in the spool.
    pub async fn recover(self: &Rc<Self>) {
        let entries = if self.bug(Bug::ForgetSpoolOnRestart) {
            Vec::new() // BUG forget-spool-on-restart: recovery skips the spool
        } else {
            self.spool.list().await
        };
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

    /// Serves one queued entry until every recipient is delivered or bounced.
    pub(crate) async fn deliver(self: Rc<Self>, id: String, mut entry: Entry) {
        loop {
            let Round { mut kept, mut failed } = self.round(&id, &mut entry).await;
            if !kept.is_empty() && self.config.age(entry.attempts + 1) > self.config.max_queue_age {
                failed.extend(kept.drain(..).map(|r| (r, "queued too long".to_string())));
            }
            if !failed.is_empty() {
                self.bounce(&id, &entry.message, &failed).await;
            }
            entry.pending = kept;
            if entry.pending.is_empty() {
                self.spool.remove(&id).await;
                self.note(&format!("done {id}"));
                return;
            }
            entry.attempts += 1;
            self.spool.update(&id, &entry).await;
            tokio::time::sleep(self.config.backoff(entry.attempts)).await;
        }
    }
}
