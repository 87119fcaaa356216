//! The SMTP client session: the other side of the server, as a state machine.
//!
//! The relay node delivers outbound mail with it, the simulation's actors send
//! with it and the probes test relays with it. Like the server session it does
//! no I/O and reads no clock: server bytes go in with [`Client::handle_input`],
//! bytes to write and the final [`Outcome`] come out of [`Client::poll_output`],
//! and time is whatever the driver says it is. That keeps a run replayable and
//! lets the same client run in turmoil, under proptest and over real TCP.
//!
//! One [`Client`] delivers one [`Job`] over one connection, then says
//! [`Output::Done`] exactly once; the driver closes the connection after that.
//!
//! # STARTTLS
//!
//! A driver that can do TLS says so with [`Client::enable_tls`]. The client
//! then sends `STARTTLS` when the EHLO reply offers it; on the `220` it asks
//! for the handshake with [`Output::StartTls`], the driver does it and
//! calls [`Client::tls_established`], and the client says EHLO again over
//! TLS. [`Job::tls`] says whether TLS may be done without
//! ([`TlsMode::Opportunistic`], the default) or not ([`TlsMode::Required`]:
//! the delivery fails for now, [`Failure::TlsUnavailable`]). Reply bytes
//! that come after the `220` and before the handshake were sent in plain
//! text where anyone on the path could have put them (the response
//! injection of Exim's CVE-2021-38371): they are discarded unread and the
//! delivery fails as a protocol error ([`Failure::ReplyInjection`]).

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine;

use crate::Now;
use crate::reply::{LineError, MAX_REPLY_LINE, Reply, ReplyReader};

/// One message to deliver, and how to introduce ourselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The name for EHLO (and HELO, if EHLO is refused).
    pub helo: String,
    /// AUTH PLAIN user and password. When set, the message is never sent
    /// unauthenticated: a server that does not offer AUTH PLAIN fails the job.
    pub auth: Option<(String, String)>,
    /// The reverse path inside `<>`; empty for the null sender.
    pub mail_from: String,
    /// The forward-paths inside `<>`, in order; one RCPT each.
    pub rcpt_to: Vec<String>,
    /// The message as CRLF lines, not dot-stuffed. A lone CR or LF is sent as
    /// CRLF (see [`data_bytes`]), and a missing final CRLF is added.
    pub body: Vec<u8>,
    /// How long to wait for each reply.
    pub timeout: Duration,
    /// Whether the message may go without TLS.
    pub tls: TlsMode,
}

/// Whether a [`Job`] needs TLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsMode {
    /// STARTTLS when the server offers it and the driver can do it
    /// ([`Client::enable_tls`]); plain text otherwise, or when the server
    /// refuses it.
    #[default]
    Opportunistic,
    /// Only over TLS: a server that does not offer STARTTLS (or refuses
    /// it), or a driver that cannot do TLS, fails the delivery for now
    /// ([`Failure::TlsUnavailable`]), and nothing of the message is sent.
    Required,
}

/// What the driver must do, from [`Client::poll_output`], in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Bytes to write to the server, in order.
    Send(Vec<u8>),
    /// Start TLS now: write out the bytes before it, do the handshake
    /// (the server's certificate is the driver's to check), then call
    /// [`Client::tls_established`]; a failed handshake is a close
    /// ([`Client::handle_close`]).
    StartTls,
    /// The session is over: close the connection. Always the last output.
    Done(Outcome),
}

/// How a job went: each recipient, the message, and the exchange that led
/// there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The server's first reply, if one came.
    pub greeting: Option<Reply>,
    /// Every recipient of the job, in job order.
    pub recipients: Vec<(String, RcptResult)>,
    /// What became of the message.
    pub message: MessageResult,
    /// Each command sent (CRLF included; the DATA body as one entry) with its
    /// reply, in order. A command left unanswered (timeout, close, protocol
    /// error) is not listed, nor is the greeting, which has no command.
    pub transcript: Vec<(Vec<u8>, Reply)>,
}

/// The server's answer to one RCPT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RcptResult {
    /// A 2xx: the server took the recipient.
    Accepted(Reply),
    /// A 4xx: refused for now; worth trying again later.
    Transient(Reply),
    /// A 5xx, or any reply that is neither 2xx nor 4xx: a recipient is only
    /// counted as accepted on a 2xx, and only retried on a 4xx.
    Permanent(Reply),
    /// No reply known: never sent (MAIL refused, session ended first), or sent
    /// and left unanswered.
    NotTried,
}

/// What became of the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageResult {
    /// The final reply after the body was a 2xx.
    Accepted(Reply),
    /// DATA or the final reply was a 4xx.
    Transient(Reply),
    /// DATA or the final reply was a 5xx, or something other than 354 to DATA
    /// or 2xx after the body.
    Permanent(Reply),
    /// The message got no final reply. When the failure (a close, a timeout,
    /// a protocol error) came after the body was sent, the server may still
    /// have taken the message: a retry can duplicate it, which is the usual
    /// SMTP choice over losing it (RFC 1047).
    NotSent(Failure),
}

/// Why a message was not sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The greeting was not 220.
    GreetingRefused(Reply),
    /// EHLO got a 4xx, or EHLO a 5xx and then HELO a non-2xx.
    HelloRefused(Reply),
    /// The job has credentials but the server does not offer AUTH PLAIN.
    AuthNotOffered,
    /// AUTH PLAIN got a reply other than 2xx.
    AuthRefused(Reply),
    /// MAIL FROM got a reply other than 2xx. Pipelined, it is reported once
    /// every RCPT reply is in, so that those reach the transcript too.
    MailRefused(Reply),
    /// Every recipient was refused (see [`Outcome::recipients`]).
    NoRecipientAccepted,
    /// The server sent a line that is not a well-formed reply. A line too long
    /// is cut at [`MAX_REPLY_LINE`] octets, so that the failure does not depend
    /// on how the bytes were split.
    Protocol {
        /// The line as received, its LF included if it had one.
        line: Vec<u8>,
        /// What is wrong with it.
        error: LineError,
    },
    /// The job needs TLS ([`TlsMode::Required`]) and there is none to be
    /// had; a passing failure, as the next attempt may find it. The text
    /// says why.
    TlsUnavailable(String),
    /// A protocol error: the server sent reply bytes after its `220` to
    /// STARTTLS and before the handshake, where only the handshake may
    /// come (response injection, CVE-2021-38371). They were discarded
    /// unread and the connection given up.
    ReplyInjection {
        /// How many octets came in plain text after the `220`.
        octets: usize,
    },
    /// No reply within [`Job::timeout`].
    Timeout,
    /// The server closed the connection.
    Closed,
    /// The job would put a line break inside a command, which would let it
    /// smuggle commands of its own; nothing was sent.
    InvalidJob(&'static str),
}

/// The service extensions of an EHLO reply that the client acts on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// `PIPELINING` (RFC 2920): MAIL and every RCPT go out in one write.
    pub pipelining: bool,
    /// The SIZE limit; `Some(0)` when SIZE is offered without one.
    pub size: Option<u64>,
    /// `8BITMIME` (RFC 6152): a body with non-ASCII octets is declared
    /// `BODY=8BITMIME`.
    pub eight_bit_mime: bool,
    /// `SMTPUTF8` (RFC 6531): declared at MAIL when an address is not ASCII.
    pub smtputf8: bool,
    /// AUTH mechanisms, upper case, in the server's order.
    pub auth: Vec<String>,
    /// `STARTTLS` (RFC 3207).
    pub starttls: bool,
}

impl Extensions {
    /// Reads the keywords of an EHLO reply, case-insensitively. The old
    /// `AUTH=PLAIN LOGIN` form is read as `AUTH PLAIN LOGIN`, as some servers
    /// still send only that.
    pub fn from_ehlo(reply: &Reply) -> Extensions {
        let mut ext = Extensions::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            let keyword = keyword.to_ascii_uppercase();
            if let Some(first) = keyword.strip_prefix("AUTH=") {
                if !first.is_empty() {
                    ext.auth.push(first.to_string());
                }
                ext.auth.extend(words.map(str::to_ascii_uppercase));
                continue;
            }
            match keyword.as_str() {
                "PIPELINING" => ext.pipelining = true,
                "SIZE" => ext.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => ext.eight_bit_mime = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "STARTTLS" => ext.starttls = true,
                "AUTH" => ext.auth.extend(words.map(str::to_ascii_uppercase)),
                _ => {}
            }
        }
        ext
    }
}

/// What an awaited reply answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    Auth,
    Mail,
    Rcpt(usize),
    Data,
    Body,
    Quit,
}

/// The client side of one SMTP connection: delivers one [`Job`], then
/// reports its [`Outcome`].
#[derive(Debug)]
pub struct Client {
    job: Job,
    /// The DATA content as it goes on the wire, computed once so that SIZE
    /// can announce its length; taken when it is sent.
    data: Vec<u8>,
    /// The body holds non-ASCII octets (for `BODY=8BITMIME`). The job's
    /// body itself is dropped once `data` is made: one copy of a large
    /// message is enough.
    eight_bit: bool,
    ext: Extensions,
    /// Replies awaited, oldest first, with the line that asked for each.
    pending: VecDeque<(Step, Vec<u8>)>,
    /// Bytes of a reply line not yet ended by LF.
    buf: Vec<u8>,
    reader: ReplyReader,
    deadline: Option<Now>,
    out: VecDeque<Output>,
    done: bool,
    greeting: Option<Reply>,
    recipients: Vec<(String, RcptResult)>,
    /// Kept until every pipelined RCPT reply is in, so that those replies still
    /// reach the transcript.
    mail_refused: Option<Reply>,
    message: Option<MessageResult>,
    transcript: Vec<(Vec<u8>, Reply)>,
    /// The driver can do TLS ([`Client::enable_tls`]).
    tls_capable: bool,
    /// The connection runs over TLS.
    tls: bool,
    /// The `220` to STARTTLS was just read: what is left of the input
    /// must be nothing.
    tls_accepted: bool,
    /// [`Output::StartTls`] is out; no server byte may come before
    /// [`Client::tls_established`].
    awaiting_handshake: bool,
}

impl Client {
    /// Starts a session on a connection just opened: the server speaks first.
    pub fn new(mut job: Job, now: Now) -> Client {
        let invalid_job = invalid(&job);
        let data = data_bytes(&job.body);
        let eight_bit = job.body.iter().any(|b| !b.is_ascii());
        job.body = Vec::new();
        let mut c = Client {
            data,
            eight_bit,
            recipients: job
                .rcpt_to
                .iter()
                .map(|r| (r.clone(), RcptResult::NotTried))
                .collect(),
            deadline: now.checked_add(job.timeout),
            job,
            ext: Extensions::default(),
            pending: VecDeque::from([(Step::Greeting, Vec::new())]),
            buf: Vec::new(),
            reader: ReplyReader::new(),
            out: VecDeque::new(),
            done: false,
            greeting: None,
            mail_refused: None,
            message: None,
            transcript: Vec::new(),
            tls_capable: false,
            tls: false,
            tls_accepted: false,
            awaiting_handshake: false,
        };
        if let Some(why) = invalid_job {
            c.abort(Failure::InvalidJob(why));
        }
        c
    }

    /// Feeds bytes from the server; any split of the stream gives the same
    /// outputs. Bytes after the session is over are ignored.
    pub fn handle_input(&mut self, now: Now, bytes: &[u8]) {
        if self.done {
            return;
        }
        if self.awaiting_handshake && !bytes.is_empty() {
            return self.abort(Failure::ReplyInjection { octets: bytes.len() });
        }
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while !self.done && !self.tls_accepted {
            let rest = &self.buf[start..];
            let window = &rest[..rest.len().min(MAX_REPLY_LINE)];
            match memchr::memchr(b'\n', window) {
                Some(nl) => {
                    let line = rest[..=nl].to_vec();
                    start += nl + 1;
                    self.on_line(now, line);
                }
                None if rest.len() >= MAX_REPLY_LINE => {
                    let line = window.to_vec();
                    self.abort(Failure::Protocol {
                        line,
                        error: LineError::TooLong(MAX_REPLY_LINE + 1),
                    });
                }
                None => break,
            }
        }
        if self.tls_accepted && !self.done {
            self.tls_accepted = false;
            let left = self.buf.len() - start;
            if left > 0 {
                // Replies pipelined after the 220 in plain text: never read.
                self.buf = Vec::new();
                return self.abort(Failure::ReplyInjection { octets: left });
            }
            self.awaiting_handshake = true;
            self.out.push_back(Output::StartTls);
        }
        if self.done {
            self.buf = Vec::new();
        } else {
            self.buf.drain(..start);
        }
    }

    /// The driver can do TLS on this connection: STARTTLS is used when the
    /// server offers it. Call it before the first input.
    pub fn enable_tls(&mut self) {
        self.tls_capable = true;
    }

    /// Whether the connection runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The driver finished the handshake [`Output::StartTls`] asked for,
    /// at `now`: the client forgets the extensions it was told in plain
    /// text and says EHLO again (RFC 3207 §4.2). Ignored at any other time.
    pub fn tls_established(&mut self, now: Now) {
        if self.done || !self.awaiting_handshake {
            return;
        }
        self.awaiting_handshake = false;
        self.tls = true;
        self.ext = Extensions::default();
        self.deadline = now.checked_add(self.job.timeout);
        self.send(Step::Ehlo, format!("EHLO {}\r\n", self.job.helo).into_bytes());
    }

    /// The server closed the connection. After QUIT that is the normal end;
    /// before, the message fails with [`Failure::Closed`].
    pub fn handle_close(&mut self, _now: Now) {
        if !self.done {
            self.abort(Failure::Closed);
        }
    }

    /// The next thing for the driver to do, `None` when there is nothing
    /// for now. Call it until `None` after [`Client::new`] (a job it cannot
    /// send is done at once) and after every `handle_*` call; carry the
    /// outputs out in order. [`Output::Done`] comes exactly once, last.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Client::handle_timeout`] should next be called; `None` once the
    /// session is over (or if the timeout is too large to be a time).
    pub fn poll_timeout(&self) -> Option<Now> {
        if self.done { None } else { self.deadline }
    }

    /// Ends the session with [`Failure::Timeout`] if the awaited reply is
    /// late. No QUIT is sent: a server that does not answer will not answer
    /// that either.
    pub fn handle_timeout(&mut self, now: Now) {
        if !self.done && self.deadline.is_some_and(|d| now >= d) {
            self.abort(Failure::Timeout);
        }
    }

    /// Whether [`Output::Done`] has been queued; input is ignored from then
    /// on.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The extensions of the last EHLO reply; none after HELO.
    pub fn extensions(&self) -> &Extensions {
        &self.ext
    }

    fn on_line(&mut self, now: Now, line: Vec<u8>) {
        self.reader.push(&line);
        match self.reader.next_reply() {
            Ok(None) => {}
            Ok(Some(reply)) => {
                self.on_reply(reply);
                self.deadline = now.checked_add(self.job.timeout);
            }
            Err(error) => self.abort(Failure::Protocol { line, error }),
        }
    }

    fn on_reply(&mut self, reply: Reply) {
        // `pending` is never empty before Done: every state awaits a reply.
        let Some((step, line)) = self.pending.pop_front() else {
            return;
        };
        if step != Step::Greeting {
            self.transcript.push((line, reply.clone()));
        }
        let ok = (200..300).contains(&reply.code);
        match step {
            Step::Greeting => {
                self.greeting = Some(reply.clone());
                if reply.code == 220 {
                    self.send(Step::Ehlo, format!("EHLO {}\r\n", self.job.helo).into_bytes());
                } else {
                    self.refuse(Failure::GreetingRefused(reply));
                }
            }
            Step::Ehlo if ok => {
                self.ext = Extensions::from_ehlo(&reply);
                self.tls_or_not();
            }
            Step::Ehlo if reply.is_permanent() => {
                self.send(Step::Helo, format!("HELO {}\r\n", self.job.helo).into_bytes());
            }
            Step::Helo if ok => self.tls_or_not(),
            Step::StartTls if reply.code == 220 => self.tls_accepted = true,
            Step::StartTls if self.job.tls == TlsMode::Required => self.refuse(Failure::TlsUnavailable(
                format!("the server refused STARTTLS: {reply}"),
            )),
            // Opportunistic: on in plain text, as before the STARTTLS.
            Step::StartTls => self.after_hello(),
            Step::Ehlo | Step::Helo => self.refuse(Failure::HelloRefused(reply)),
            Step::Auth if ok => self.start_mail(),
            Step::Auth => self.refuse(Failure::AuthRefused(reply)),
            Step::Mail | Step::Rcpt(_) => {
                let next = match step {
                    Step::Rcpt(i) => {
                        self.recipients[i].1 = rcpt_result(reply);
                        i + 1
                    }
                    _ => {
                        if !ok {
                            self.mail_refused = Some(reply);
                        }
                        0
                    }
                };
                // Pipelined, all RCPTs are already out; otherwise send the
                // next one only now that the previous reply is in.
                if self.pending.is_empty() {
                    if self.mail_refused.is_none() && next < self.job.rcpt_to.len() {
                        self.send(Step::Rcpt(next), rcpt_line(&self.job.rcpt_to[next]));
                    } else {
                        self.end_envelope();
                    }
                }
            }
            Step::Data if reply.code == 354 => {
                // One copy goes out, the other waits for its reply (and the
                // transcript); the client keeps no third.
                let data = std::mem::take(&mut self.data);
                self.out.push_back(Output::Send(data.clone()));
                self.pending.push_back((Step::Body, data));
            }
            Step::Data => {
                self.message = Some(refusal(reply));
                self.quit();
            }
            Step::Body => {
                self.message = Some(if ok {
                    MessageResult::Accepted(reply)
                } else {
                    refusal(reply)
                });
                self.quit();
            }
            Step::Quit => self.finish(),
        }
    }

    /// After EHLO (or HELO): STARTTLS first when it is offered and the
    /// driver can do it, unless TLS is up already.
    fn tls_or_not(&mut self) {
        if self.tls {
            return self.after_hello();
        }
        if self.tls_capable && self.ext.starttls {
            return self.send(Step::StartTls, b"STARTTLS\r\n".to_vec());
        }
        if self.job.tls == TlsMode::Required {
            let why = if self.tls_capable {
                "the server does not offer STARTTLS"
            } else {
                "this connection cannot do TLS"
            };
            return self.refuse(Failure::TlsUnavailable(why.into()));
        }
        self.after_hello()
    }

    fn after_hello(&mut self) {
        match &self.job.auth {
            None => self.start_mail(),
            Some(_) if !self.ext.auth.iter().any(|m| m == "PLAIN") => self.refuse(Failure::AuthNotOffered),
            Some((user, password)) => {
                let response =
                    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
                self.send(Step::Auth, format!("AUTH PLAIN {response}\r\n").into_bytes());
            }
        }
    }

    fn start_mail(&mut self) {
        let mut params = String::new();
        if self.ext.size.is_some() {
            // The dot-stuffed length without the final ".<CRLF>": close to
            // what the server will count, which RFC 1870 allows.
            params.push_str(&format!(" SIZE={}", self.data.len() - 3));
        }
        if self.ext.eight_bit_mime && self.eight_bit {
            params.push_str(" BODY=8BITMIME");
        }
        let non_ascii = !self.job.mail_from.is_ascii() || self.job.rcpt_to.iter().any(|r| !r.is_ascii());
        if self.ext.smtputf8 && non_ascii {
            params.push_str(" SMTPUTF8");
        }
        let mail = format!("MAIL FROM:<{}>{params}\r\n", self.job.mail_from).into_bytes();
        if self.ext.pipelining {
            let mut group = vec![(Step::Mail, mail)];
            for (i, rcpt) in self.job.rcpt_to.iter().enumerate() {
                group.push((Step::Rcpt(i), rcpt_line(rcpt)));
            }
            self.send_group(group);
        } else {
            self.send(Step::Mail, mail);
        }
    }

    /// Every MAIL and RCPT reply is in: DATA only if a recipient was accepted,
    /// since the body must never reach a transaction the server refused.
    fn end_envelope(&mut self) {
        if let Some(reply) = self.mail_refused.take() {
            self.refuse(Failure::MailRefused(reply));
        } else if self
            .recipients
            .iter()
            .any(|(_, r)| matches!(r, RcptResult::Accepted(_)))
        {
            self.send(Step::Data, b"DATA\r\n".to_vec());
        } else {
            self.refuse(Failure::NoRecipientAccepted);
        }
    }

    fn refuse(&mut self, failure: Failure) {
        self.message = Some(MessageResult::NotSent(failure));
        self.quit();
    }

    fn quit(&mut self) {
        self.send(Step::Quit, b"QUIT\r\n".to_vec());
    }

    /// Ends at once, without QUIT. A result already decided (the session was
    /// only waiting for the QUIT reply) stands.
    fn abort(&mut self, failure: Failure) {
        self.message.get_or_insert(MessageResult::NotSent(failure));
        self.finish();
    }

    fn finish(&mut self) {
        let outcome = Outcome {
            greeting: self.greeting.take(),
            recipients: std::mem::take(&mut self.recipients),
            message: self
                .message
                .take()
                .unwrap_or(MessageResult::NotSent(Failure::Closed)),
            transcript: std::mem::take(&mut self.transcript),
        };
        self.out.push_back(Output::Done(outcome));
        self.done = true;
        self.pending.clear();
    }

    fn send(&mut self, step: Step, line: Vec<u8>) {
        self.send_group(vec![(step, line)]);
    }

    /// Sends the lines in one write and awaits a reply to each.
    fn send_group(&mut self, group: Vec<(Step, Vec<u8>)>) {
        let bytes = group.iter().flat_map(|(_, line)| line.iter().copied()).collect();
        self.out.push_back(Output::Send(bytes));
        self.pending.extend(group);
    }
}

fn rcpt_line(rcpt: &str) -> Vec<u8> {
    format!("RCPT TO:<{rcpt}>\r\n").into_bytes()
}

fn rcpt_result(reply: Reply) -> RcptResult {
    match reply.code {
        200..=299 => RcptResult::Accepted(reply),
        400..=499 => RcptResult::Transient(reply),
        _ => RcptResult::Permanent(reply),
    }
}

fn refusal(reply: Reply) -> MessageResult {
    if reply.is_transient() {
        MessageResult::Transient(reply)
    } else {
        MessageResult::Permanent(reply)
    }
}

/// Which job field would break a command line in two, if any.
fn invalid(job: &Job) -> Option<&'static str> {
    let breaks = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n');
    if breaks(&job.helo) {
        Some("line break in helo")
    } else if breaks(&job.mail_from) {
        Some("line break in mail_from")
    } else if job.rcpt_to.iter().any(|r| breaks(r)) {
        Some("line break in rcpt_to")
    } else {
        None
    }
}

/// The DATA content for `body`, as sent after the 354: every line ended by
/// CRLF, lines starting with `.` dot-stuffed, then `.<CRLF>`.
///
/// A lone CR and a lone LF each become CRLF. Sent as is, a bare line ending
/// is read differently by different servers, which is how SMTP smuggling
/// slips a second message past the first one's checks; CRLF is what the
/// sender most likely meant. A body not ending in CRLF gets one, since the
/// terminating `.` must start a line.
pub fn data_bytes(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 32 + 5);
    let mut line_start = true;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b == b'\r' || b == b'\n' {
            out.extend_from_slice(b"\r\n");
            i += if b == b'\r' && body.get(i + 1) == Some(&b'\n') {
                2
            } else {
                1
            };
            line_start = true;
            continue;
        }
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = false;
        i += 1;
    }
    if !line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests;
