//! The queue: recovery after a restart, and each entry's rounds of delivery
//! with backoff until every recipient is delivered or bounced.

use std::collections::BTreeMap;
use std::rc::Rc;

use relayguard_core::address::Domain;
use relayguard_core::buggify::Bug;
use relayguard_core::policy::Destination;
use relayguard_core::session::Recipient;

use crate::delivery::Attempt;
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
        for (id, entry) in entries {
            self.note(&format!("recovered {id}"));
            tokio::task::spawn_local(self.clone().deliver(id, entry));
        }
    }

    /// Serves one queued entry until every recipient is delivered or bounced.
    pub(crate) async fn deliver(self: Rc<Self>, id: String, mut entry: Entry) {
        loop {
            let mut failed: Vec<(Recipient, String)> = Vec::new();
            let mut kept: Vec<Recipient> = Vec::new();
            let mut groups: BTreeMap<Domain, Vec<Recipient>> = BTreeMap::new();
            for r in std::mem::take(&mut entry.pending) {
                match &r.destination {
                    Destination::Local { mailbox } => {
                        match self.mailboxes.deliver(mailbox, &id, &entry.message).await {
                            Ok(()) => self.note(&format!("delivered {id} local {mailbox}")),
                            Err(e) => failed.push((r.clone(), e)),
                        }
                    }
                    Destination::Remote { mailbox } | Destination::RelayTo { mailbox } => {
                        match &mailbox.domain {
                            Some(d) => groups.entry(d.clone()).or_default().push(r.clone()),
                            None => failed.push((r.clone(), "no domain".into())),
                        }
                    }
                }
            }
            for (domain, rcpts) in groups {
                let results = self.attempt(&domain, &rcpts, &entry.message).await;
                for (r, a) in rcpts.into_iter().zip(results) {
                    let to = r.path.to_string();
                    match a {
                        Attempt::Delivered => self.note(&format!("delivered {id} remote {to}")),
                        Attempt::Deferred(why) => {
                            self.note(&format!("deferred {id} {to}: {why}"));
                            kept.push(r);
                        }
                        Attempt::Failed(why) => failed.push((r, why)),
                    }
                }
            }
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
