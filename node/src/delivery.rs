//! One round of delivery: local mailboxes, then remote exchangers one
//! domain at a time; and the outbound client driver.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use relayguard_core::Destination;
use relayguard_core::Domain;
use relayguard_core::check::buggify::Bug;
use relayguard_core::client::{self, Client, Job, MessageResult, Outcome, RcptResult};
use relayguard_core::{Message, Recipient};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::clock::{Clock, sleep_until};
use crate::node::Node;
use crate::ports::{DeliverError, Entry, Mailboxes, Net, Resolver, Spool, Tap};

/// What a round left: recipients to try again, recipients to bounce (with
/// the reason the bounce gives).
#[derive(Default)]
pub(crate) struct Round {
    pub kept: Vec<Recipient>,
    pub failed: Vec<(Recipient, String)>,
}

impl<N: Net, S: Spool, R: Resolver, M: Mailboxes, T: Tap> Node<N, S, R, M, T> {
    /// Serves every pending recipient of `entry` once (taking them out of
    /// `entry.pending`); `message` is its message with the body read back.
    pub(crate) async fn round(&self, id: &str, entry: &mut Entry, message: &Message) -> Round {
        let mut round = Round::default();
        let mut groups: BTreeMap<Domain, Vec<Recipient>> = BTreeMap::new();
        for r in std::mem::take(&mut entry.pending) {
            match &r.destination {
                Destination::Local { mailbox } => {
                    let mut result = self.mailboxes.deliver(mailbox, id, message).await;
                    if self.bug(Bug::BounceOnTransient) {
                        // BUG bounce-on-transient: a full disk bounces the mail
                        result = result.map_err(|e| DeliverError::Permanent(e.to_string()));
                    }
                    self.settle(id, &mut round, r.clone(), &format!("local {mailbox}"), result);
                }
                Destination::Remote { mailbox } | Destination::RelayTo { mailbox } => match &mailbox.domain {
                    Some(d) => groups.entry(d.clone()).or_default().push(r.clone()),
                    None => round.failed.push((r.clone(), "no domain".into())),
                },
            }
        }
        for (domain, rcpts) in groups {
            let results = self.attempt(&domain, &rcpts, message).await;
            for (r, result) in rcpts.into_iter().zip(results) {
                let to = format!("remote {}", r.path);
                self.settle(id, &mut round, r, &to, result);
            }
        }
        round
    }

    /// Files one recipient's result: a transient failure is kept for the
    /// next round, a permanent one is bounced.
    fn settle(&self, id: &str, round: &mut Round, r: Recipient, to: &str, result: Result<(), DeliverError>) {
        match result {
            Ok(()) => self.note(&format!("delivered {id} {to}")),
            Err(e) if e.is_transient() => {
                self.note(&format!("deferred {id} {}: {e}", r.path));
                round.kept.push(r);
            }
            Err(e) => round.failed.push((r, e.to_string())),
        }
    }

    /// One delivery attempt to a domain's exchangers.
    async fn attempt(
        &self,
        domain: &Domain,
        rcpts: &[Recipient],
        message: &Message,
    ) -> Vec<Result<(), DeliverError>> {
        let addrs = self.resolver.resolve(domain).await;
        if addrs.is_empty() {
            return rcpts
                .iter()
                .map(|_| Err(DeliverError::Permanent(format!("no mail exchanger for {domain}"))))
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
            // BDAT where the next hop offers CHUNKING: the body never holds
            // a bare CR or LF (the session refuses those), so it goes as is.
            chunking: true,
            tls: Default::default(),
        };
        // At most `destination_concurrency_limit` connections to this
        // domain at once: the rest wait here for a slot.
        let limit = self.policy.config().limits.destination_concurrency_limit;
        let slots = self.destinations.of(domain, limit);
        let _slot = slots.acquire().await;
        let result = self.connect_and_send(domain, addrs, job).await;
        drop(_slot);
        self.destinations.release(domain, slots);
        match result {
            Ok(outcome) => judge(outcome),
            Err(last) => rcpts
                .iter()
                .map(|_| Err(DeliverError::Transient(last.clone())))
                .collect(),
        }
    }

    /// Tries each exchanger in turn; the outcome of the first that
    /// answered, or the last error when none did.
    async fn connect_and_send(
        &self,
        domain: &Domain,
        addrs: Vec<std::net::SocketAddr>,
        job: Job,
    ) -> Result<Outcome, String> {
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
            let client = Client::new(job.clone(), self.clock.now());
            let outcome = match &self.config.tls_client {
                Some(config) => {
                    let name = crate::tls::server_name(&domain.to_string());
                    run_client_tls(stream, client, &self.clock, config.clone(), name).await
                }
                None => run_client(stream, client, &self.clock).await,
            };
            return Ok(outcome);
        }
        Err(last)
    }
}

/// Outbound connections per destination domain: each domain's own
/// `limits.destination_concurrency_limit` slots, shared by every delivery
/// to it; a domain leaves the map when nobody uses or waits for it.
#[derive(Default)]
pub(crate) struct DestinationSlots(RefCell<BTreeMap<Domain, Rc<Semaphore>>>);

impl DestinationSlots {
    /// The slots of `domain`, made with `limit` of them on first use.
    fn of(&self, domain: &Domain, limit: usize) -> Rc<Semaphore> {
        self.0
            .borrow_mut()
            .entry(domain.clone())
            .or_insert_with(|| Rc::new(Semaphore::new(limit.max(1))))
            .clone()
    }

    /// Gives back a delivery's hold on `domain`'s slots, and forgets them
    /// when it was the last.
    fn release(&self, domain: &Domain, slots: Rc<Semaphore>) {
        let mut map = self.0.borrow_mut();
        // Ours and the map's are the only references left: nobody waits.
        if Rc::strong_count(&slots) == 2 {
            map.remove(domain);
        }
    }
}

/// Per recipient: delivered, deferred (4xx, no answer) or failed (5xx).
fn judge(outcome: Outcome) -> Vec<Result<(), DeliverError>> {
    let message = outcome.message;
    outcome
        .recipients
        .into_iter()
        .map(|(_, r)| match (&message, r) {
            (_, RcptResult::Permanent(reply)) => Err(DeliverError::Permanent(reply.to_string())),
            (MessageResult::Accepted(_), RcptResult::Accepted(_)) => Ok(()),
            (MessageResult::Permanent(reply), RcptResult::Accepted(_)) => {
                Err(DeliverError::Permanent(reply.to_string()))
            }
            (MessageResult::NotSent(relayguard_core::client::Failure::MailRefused(reply)), _)
                if reply.is_permanent() =>
            {
                Err(DeliverError::Permanent(reply.to_string()))
            }
            (m, _) => Err(DeliverError::Transient(format!("{m:?}"))),
        })
        .collect()
}

/// Drives a core client session over a stream until it is done, in plain
/// text: the client is not told it can do TLS, so it never asks.
pub async fn run_client<St: AsyncRead + AsyncWrite + Unpin>(
    mut stream: St,
    mut c: Client,
    clock: &Clock,
) -> Outcome {
    match drive_client(&mut stream, &mut c, clock).await {
        ClientEnded::Done(outcome) => outcome,
        // Not enabled, so not asked for; were it to be, a handshake this
        // driver cannot do is a failed one: a close.
        ClientEnded::StartTls => {
            c.handle_close(clock.now());
            finish(&mut stream, &mut c, clock).await
        }
    }
}

/// As [`run_client`], with STARTTLS when the server offers it (and the
/// job's `tls` mode decides what a server without it gets): the handshake
/// with `config`, naming the server `name`, under the client's reply
/// deadline. A failed handshake is a close: the message fails as it would
/// on any close (a passing failure), nothing of it sent in plain text.
pub async fn run_client_tls<St: AsyncRead + AsyncWrite + Unpin>(
    mut stream: St,
    mut c: Client,
    clock: &Clock,
    config: Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
) -> Outcome {
    c.enable_tls();
    match drive_client(&mut stream, &mut c, clock).await {
        ClientEnded::Done(outcome) => outcome,
        ClientEnded::StartTls => {
            let connect = tokio_rustls::TlsConnector::from(config).connect(name, &mut stream);
            let done = match c.poll_timeout() {
                Some(d) => tokio::time::timeout_at(clock.instant(d), connect).await.ok(),
                None => Some(connect.await),
            };
            match done {
                Some(Ok(mut tls)) => {
                    c.tls_established(clock.now());
                    match drive_client(&mut tls, &mut c, clock).await {
                        ClientEnded::Done(outcome) => outcome,
                        // A second STARTTLS is not the client's to ask.
                        ClientEnded::StartTls => {
                            c.handle_close(clock.now());
                            finish(&mut tls, &mut c, clock).await
                        }
                    }
                }
                // Failed or not done by the deadline.
                _ => {
                    c.handle_close(clock.now());
                    finish(&mut stream, &mut c, clock).await
                }
            }
        }
    }
}

/// How [`drive_client`] ended.
enum ClientEnded {
    Done(Outcome),
    /// The client asked for the handshake; what came before is written.
    StartTls,
}

/// The outcome of a client that was closed: its last outputs, without
/// reading any more.
async fn finish<St: AsyncWrite + Unpin>(stream: &mut St, c: &mut Client, clock: &Clock) -> Outcome {
    loop {
        match c.poll_output() {
            Some(client::Output::Done(outcome)) => {
                let _ = stream.shutdown().await;
                return outcome;
            }
            Some(_) => {}
            // A closed client is done; should it not be, it is now.
            None => c.handle_close(clock.now()),
        }
    }
}

/// Runs the client over `stream` until it is done or asks for TLS.
async fn drive_client<St: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut St,
    c: &mut Client,
    clock: &Clock,
) -> ClientEnded {
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
                    return ClientEnded::Done(outcome);
                }
                client::Output::StartTls => return ClientEnded::StartTls,
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

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use relayguard_core::client::{Failure, MessageResult, Outcome, RcptResult};
    use relayguard_core::{Domain, Enhanced, Reply};

    use super::{DestinationSlots, judge};
    use crate::ports::DeliverError;

    /// Deliveries to one domain share its slots while any of them holds or
    /// waits for one, so that a delivery starting while another is under
    /// way counts against the same limit; the domain is forgotten after.
    #[test]
    fn a_domain_s_slots_are_shared_while_used_and_forgotten_after() {
        let slots = DestinationSlots::default();
        let d = Domain::Name("dest.example".into());
        let first = slots.of(&d, 1);
        let second = slots.of(&d, 1);
        assert!(Rc::ptr_eq(&first, &second));
        slots.release(&d, first);
        let third = slots.of(&d, 1);
        assert!(Rc::ptr_eq(&second, &third), "the second still holds them");
        slots.release(&d, second);
        slots.release(&d, third);
        assert!(slots.0.borrow().is_empty());
    }

    fn reply(code: u16) -> Reply {
        Reply::new(code, Enhanced((code / 100) as u8, 0, 0), "x")
    }

    fn outcome(message: MessageResult, recipients: Vec<RcptResult>) -> Outcome {
        Outcome {
            greeting: Some(reply(220)),
            recipients: recipients.into_iter().map(|r| ("r".to_string(), r)).collect(),
            message,
            transcript: Vec::new(),
        }
    }

    /// What the next hop said decides, per recipient, between delivered,
    /// tried again (4xx, no answer) and bounced (5xx): a bounce for a
    /// passing refusal loses mail the next round would have delivered, a
    /// retry of a final one keeps it queued until it is too old.
    #[test]
    fn each_recipient_is_judged_by_its_own_reply_and_the_message_s() {
        let kinds = |o: Outcome| -> Vec<Option<bool>> {
            judge(o)
                .iter()
                .map(|r| r.as_ref().err().map(DeliverError::is_transient))
                .collect()
        };
        let rcpts = || {
            vec![
                RcptResult::Accepted(reply(250)),
                RcptResult::Transient(reply(450)),
                RcptResult::Permanent(reply(550)),
            ]
        };
        // None: delivered; Some(true): tried again; Some(false): bounced.
        assert_eq!(
            kinds(outcome(MessageResult::Accepted(reply(250)), rcpts())),
            [None, Some(true), Some(false)]
        );
        assert_eq!(
            kinds(outcome(MessageResult::Transient(reply(451)), rcpts())),
            [Some(true), Some(true), Some(false)]
        );
        assert_eq!(
            kinds(outcome(MessageResult::Permanent(reply(554)), rcpts())),
            [Some(false), Some(true), Some(false)]
        );
        let refused = |code| MessageResult::NotSent(Failure::MailRefused(reply(code)));
        assert_eq!(
            kinds(outcome(
                refused(550),
                vec![RcptResult::NotTried, RcptResult::NotTried]
            )),
            [Some(false), Some(false)]
        );
        assert_eq!(
            kinds(outcome(refused(451), vec![RcptResult::NotTried])),
            [Some(true)]
        );
        assert_eq!(
            kinds(outcome(
                MessageResult::NotSent(Failure::NoRecipientAccepted),
                vec![RcptResult::NotTried]
            )),
            [Some(true)]
        );
    }
}
