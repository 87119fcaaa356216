//! Bounces: a report to the sender of the recipients that failed.

use std::rc::Rc;

use relayguard_core::Destination;
use relayguard_core::{Domain, Path};
use relayguard_core::{Message, Recipient};

use crate::node::Node;
use crate::ports::{Entry, Mailboxes, Net, Resolver, Spool, Tap};

impl<N: Net, S: Spool, R: Resolver, M: Mailboxes, T: Tap> Node<N, S, R, M, T> {
    fn is_local(&self, d: &Domain) -> bool {
        self.policy.is_local_domain(d)
    }

    /// Sends a bounce to the sender, from `<>`; never for a bounce.
    /// `false` when the bounce could not be stored: the caller keeps the
    /// failed recipients queued and tries again.
    pub(crate) async fn bounce(
        self: &Rc<Self>,
        id: &str,
        message: &Message,
        failed: &[(Recipient, String)],
    ) -> bool {
        let Some(sender) = message.from.mailbox.clone() else {
            self.note(&format!("bounce of {id} dropped: null sender"));
            return true;
        };
        let destination = match &sender.domain {
            Some(d) if self.is_local(d) => Destination::Local {
                mailbox: sender.key(),
            },
            Some(_) => Destination::Remote {
                mailbox: sender.clone(),
            },
            None => {
                self.tap
                    .event(&format!("bounce of {id} dropped: unqualified sender"));
                return true;
            }
        };
        let mut body = format!(
            "From: MAILER-DAEMON@{host}\r\nTo: <{sender}>\r\nSubject: Undelivered Mail Returned to Sender\r\nX-Bounce-Of: {id}\r\n\r\nThese recipients failed:\r\n",
            host = self.policy.hostname()
        )
        .into_bytes();
        for (r, why) in failed {
            body.extend_from_slice(format!("{}: {}\r\n", r.path, why.replace(['\r', '\n'], " ")).as_bytes());
        }
        body.extend_from_slice(b"\r\n--- headers of the message ---\r\n");
        let headers_end = find(&message.body, b"\r\n\r\n").map_or(message.body.len(), |i| i + 2);
        body.extend_from_slice(&message.body[..headers_end]);
        let bounce = Message {
            client: message.client,
            helo: self.policy.hostname().to_string(),
            user: None,
            from: Path::NULL,
            recipients: vec![Recipient {
                path: Path {
                    route: Vec::new(),
                    mailbox: Some(sender),
                },
                destination,
            }],
            body,
        };
        let mut entry = Entry::new(bounce);
        match self.spool.store(&entry).await {
            Ok(bid) => {
                self.note(&format!("bounced {id} as {bid}"));
                entry.message.body = Vec::new();
                tokio::task::spawn_local(self.clone().deliver(bid, entry));
                true
            }
            Err(e) => {
                self.note(&format!("bounce of {id} not stored: {e}"));
                false
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
