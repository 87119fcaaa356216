//! Delivery to remote exchangers, and the outbound client driver.

use relayguard_core::address::Domain;
use relayguard_core::client::{self, Client, Job, MessageResult, Outcome, RcptResult};
use relayguard_core::session::{Message, Recipient};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::clock::{Clock, sleep_until};
use crate::node::Node;
use crate::ports::{Mailboxes, Net, Resolver, Spool, Tap};

/// The result of one delivery attempt for a group of recipients.
pub(crate) enum Attempt {
    Delivered,
    Deferred(String),
    Failed(String),
}

impl<N: Net, S: Spool, R: Resolver, M: Mailboxes, T: Tap> Node<N, S, R, M, T> {
    /// One delivery attempt to a domain's exchangers.
    pub(crate) async fn attempt(
        &self,
        domain: &Domain,
        rcpts: &[Recipient],
        message: &Message,
    ) -> Vec<Attempt> {
        let addrs = self.resolver.resolve(domain).await;
        if addrs.is_empty() {
            return rcpts
                .iter()
                .map(|_| Attempt::Failed(format!("no mail exchanger for {domain}")))
                .collect();
        }
        let job = Job {
            helo: self.policy.hostname().to_string(),
            auth: None,
            mail_from: message
                .from
                .mailbox
                .as_ref()
                .map_or(String::new(), |m| m.to_string()),
            rcpt_to: rcpts
                .iter()
                .map(|r| {
                    r.destination
                        .remote_mailbox()
                        .map_or(String::new(), |m| m.to_string())
                })
                .collect(),
            body: message.body.clone(),
            timeout: self.config.reply_timeout,
        };
        let mut last = String::from("no exchanger answered");
        for addr in addrs {
            let stream = match tokio::time::timeout(self.config.connect_timeout, self.net.connect(addr)).await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    last = format!("{addr}: {e}");
                    continue;
                }
                Err(_) => {
                    last = format!("{addr}: connect timeout");
                    continue;
                }
            };
            let outcome = run_client(stream, Client::new(job.clone(), self.clock.now()), &self.clock).await;
            return judge(outcome);
        }
        rcpts.iter().map(|_| Attempt::Deferred(last.clone())).collect()
    }
}

/// Per recipient: delivered, deferred (4xx, no answer) or failed (5xx).
fn judge(outcome: Outcome) -> Vec<Attempt> {
    let message = outcome.message;
    outcome
        .recipients
        .into_iter()
        .map(|(_, r)| match (&message, r) {
            (_, RcptResult::Permanent(reply)) => Attempt::Failed(reply.to_string()),
            (MessageResult::Accepted(_), RcptResult::Accepted(_)) => Attempt::Delivered,
            (MessageResult::Permanent(reply), RcptResult::Accepted(_)) => Attempt::Failed(reply.to_string()),
            (MessageResult::NotSent(relayguard_core::client::Failure::MailRefused(reply)), _)
                if reply.is_permanent() =>
            {
                Attempt::Failed(reply.to_string())
            }
            (m, _) => Attempt::Deferred(format!("{m:?}")),
        })
        .collect()
}

/// Drives a core client session over a stream until it is done.
pub async fn run_client<St: AsyncRead + AsyncWrite + Unpin>(
    mut stream: St,
    mut c: Client,
    clock: &Clock,
) -> Outcome {
    let mut buf = vec![0u8; 8192];
    loop {
        while let Some(out) = c.poll_output() {
            match out {
                client::Output::Send(bytes) => {
                    if stream.write_all(&bytes).await.is_err() {
                        c.handle_close(clock.now());
                    }
                }
                client::Output::Done(outcome) => {
                    let _ = stream.shutdown().await;
                    return outcome;
                }
            }
        }
        let deadline = c.poll_timeout();
        tokio::select! {
            biased;
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => c.handle_close(clock.now()),
                Ok(n) => c.handle_input(clock.now(), &buf[..n]),
            },
            _ = sleep_until(deadline.map(|d| clock.instant(d))) => c.handle_timeout(clock.now()),
        }
    }
}
