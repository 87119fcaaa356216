//! The server side of one SMTP connection, as a state machine.
//!
//! Bytes come in through [`Session::handle_input`], in any split; replies,
//! messages to store and the request to close come out of
//! [`Session::poll_output`]. Time is passed in by the caller. The final `250`
//! for a message is sent only after the driver reports it stored
//! ([`Session::message_stored`]): that is how "no loss" is built.
//!
//! One rule depends on how the input was split, on purpose: bytes that follow
//! a `DATA` command in the same [`Session::handle_input`] call were sent
//! before the client could have seen the `354`, which a conforming client
//! never does (RFC 2920 §3.1). The session answers `554 5.5.0` and closes,
//! as Postfix's `smtpd_forbid_unauth_pipelining` does. Every other split of
//! the same bytes gives the same outputs.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::address::Path;
use crate::check::Bug;
use crate::command::{self, Command, MAX_LINE, ParseError, PathArg};
use crate::data::{BODY_PIECE, BodySink, DataReader, Ended};
use crate::policy::{Context, Decision, Policy};
use crate::proxy::V2_SIGNATURE;
mod auth;
mod chunking;
mod deadlines;
mod message;
mod starttls;
mod xclient;

pub use message::{Message, NotStored, Output, Peer, Recipient, StoreResult};

use crate::Now;
use crate::reply::Enhanced;

#[derive(Debug)]
enum State {
    Command,
    /// An overlong command line is being skipped up to its LF.
    Discard,
    Data(Box<DataReader>),
    /// Reading the octets of a BDAT chunk of `size` into the
    /// transaction's body; `left` of them still to come.
    Chunk {
        size: u64,
        left: u64,
        last: bool,
    },
    /// Skipping the octets of a refused BDAT chunk.
    SkipChunk {
        left: u64,
    },
    Auth(AuthStep),
    /// A message was handed out; input waits until it is stored.
    AwaitStore,
    /// `220` to STARTTLS was sent: the driver is doing the handshake, and
    /// every octet that comes meanwhile is discarded
    /// ([`Session::injected_octets`]).
    StartTls,
    Closed,
}

#[derive(Debug)]
enum AuthStep {
    Plain,
    LoginUser,
    LoginPassword(String),
}

#[derive(Debug)]
struct Transaction {
    from: Path,
    /// The SIZE the client declared, to size the body buffer once.
    size_hint: usize,
    recipients: Vec<Recipient>,
    smtputf8: bool,
    /// The body so far of a message sent with BDAT; DATA is refused once
    /// it is there.
    chunks: Option<Box<chunking::Chunks>>,
}

/// The server session.
#[derive(Debug)]
pub struct Session {
    policy: Arc<Policy>,
    peer: Peer,
    state: State,
    input: Vec<u8>,
    out: VecDeque<Output>,
    helo: Option<String>,
    esmtp: bool,
    user: Option<String>,
    tx: Option<Transaction>,
    errors: usize,
    /// NOOP, RSET, VRFY and HELP since the last stored message.
    junk: usize,
    /// Greeted with a refusal: only QUIT is served (RFC 5321 §3.1).
    refused: bool,
    deadline: Option<Now>,
    /// When the session began: the lifetime cap counts from here.
    started: Now,
    /// The last time the caller gave: held input processed from
    /// [`Session::poll_output`] is stamped with it.
    last_now: Now,
    /// Command lines (and ends of DATA) taken so far: a change tells that
    /// the partial line now held is a new one.
    lines: u64,
    /// When the first octet of the partial command line held arrived.
    line_started: Option<Now>,
    /// When the `354` was sent, and the octets of message data since.
    data_started: Option<Now>,
    data_octets: u64,
    /// Processing stops after a failed AUTH, so that the driver can pause
    /// before the next attempt is served; the next `poll_output` on an
    /// empty queue goes on.
    stopped: bool,
    /// Failed AUTH attempts in this session, and those not yet taken by
    /// [`Session::take_auth_failures`].
    auth_failures: u32,
    auth_failures_unreported: u32,
    /// Error replies beyond `limits.soft_error_limit` not yet taken by the
    /// driver: each is worth a pause of `limits.error_delay_ms`.
    slow_errors_unreported: u32,
    /// The driver said this client has used up its AUTH attempts.
    auth_refused: bool,
    /// Bodies go out in pieces ([`Output::Body`]) instead of whole.
    stream_bodies: bool,
    /// The driver can do TLS here ([`Session::offer_tls`]).
    tls_offered: bool,
    /// The connection runs over TLS.
    tls: bool,
    /// Octets discarded between STARTTLS and the handshake.
    injected: u64,
    /// A PROXY header named the client before the session began: every
    /// byte since is the client's, so an XCLIENT in them is the client's
    /// own, not the proxy's.
    header_named: bool,
    /// EHLO offers CHUNKING and BDAT is served.
    chunking: bool,
}

const HELO_FIRST: &str = "Error: send HELO/EHLO first";

/// Input held while a message is being stored: room for a full pipelined
/// transaction of commands (RFC 2920), far more than any client needs.
pub const MAX_PIPELINED: usize = 256 * 1024;

/// Replies queued and not yet taken by [`Session::poll_output`] beyond
/// which the session stops consuming input: a client that pipelines
/// commands without reading the replies gets no more served than this
/// until the driver has written them out.
pub const MAX_PENDING_OUTPUT: usize = 4096;

impl Session {
    /// A session for a connection just accepted, at `now`. The greeting is
    /// queued at once: `220` if [`Policy::connect`] admits the client,
    /// otherwise its refusal (`554 5.7.1`), after which only QUIT is served
    /// (RFC 5321 §3.1). Either way the command timeout starts.
    pub fn new(policy: Arc<Policy>, peer: Peer, now: Now) -> Session {
        let mut s = Session {
            policy,
            peer,
            state: State::Command,
            input: Vec::new(),
            out: VecDeque::new(),
            helo: None,
            esmtp: false,
            user: None,
            tx: None,
            errors: 0,
            junk: 0,
            refused: false,
            deadline: None,
            started: now,
            last_now: now,
            lines: 0,
            line_started: None,
            data_started: None,
            data_octets: 0,
            stopped: false,
            auth_failures: 0,
            auth_failures_unreported: 0,
            slow_errors_unreported: 0,
            auth_refused: false,
            stream_bodies: false,
            tls_offered: false,
            tls: false,
            injected: 0,
            header_named: peer.via.is_some(),
            chunking: true,
        };
        match s.policy.connect(peer.ip) {
            Ok(()) => {
                let greeting = format!("220 {} ESMTP relayguard\r\n", s.policy.hostname());
                s.send(greeting.as_bytes());
                s.arm(now);
            }
            Err(refusal) => {
                s.send(&refusal.reply.to_bytes());
                s.refused = true;
                s.arm(now);
            }
        }
        s
    }

    /// Hands message bodies out in pieces of at most [`BODY_PIECE`]
    /// octets ([`Output::Body`]) as they arrive, instead of whole in the
    /// [`Message`]: the driver writes them to its spool, and the session
    /// holds a piece, not `limits.max_message_size`. The guarantees stay:
    /// a refused body (too big, a bare CR or LF) ends with
    /// [`Output::DropBody`] and no `Message`, and the `250` still waits for
    /// [`Session::message_stored`]. Call it before the first input.
    pub fn stream_bodies(&mut self) {
        self.stream_bodies = true;
    }

    /// Stops offering CHUNKING (RFC 3030), as a server that does not
    /// implement it: BDAT is answered `502 5.5.1` and its octets are still
    /// skipped, never read as commands. The simulation's foreign
    /// exchangers use it, so that the relay's client sends with DATA too.
    /// Call it before the first input.
    pub fn refuse_chunking(&mut self) {
        self.chunking = false;
    }

    /// Marks the session as authenticated without an AUTH exchange, as a
    /// submission port behind another authenticator would (transcripts'
    /// `@auth USER`).
    pub fn set_authenticated(&mut self, user: &str) {
        self.user = Some(user.to_string());
    }

    /// The client this session serves.
    pub fn peer(&self) -> Peer {
        self.peer
    }

    /// The authenticated user (by AUTH or [`Session::set_authenticated`]),
    /// if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Whether the session is over: [`Output::Close`] has been queued, and
    /// input is ignored from now on.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Octets held for this session: unprocessed input and the body being
    /// received. Bounded by the configured limits whatever the input.
    pub fn buffered(&self) -> usize {
        let body = match &self.state {
            State::Data(r) => r.buffered(),
            _ => 0,
        } + self
            .tx
            .as_ref()
            .and_then(|t| t.chunks.as_ref())
            .map_or(0, |c| c.buffered());
        self.input.len() + body + self.pending_body()
    }

    /// The next thing for the driver to do, `None` when there is nothing
    /// for now. Call it until `None` after [`Session::new`] and after every
    /// `handle_*` and [`Session::message_stored`] call, and carry the outputs
    /// out in order, so that the replies before a `Close` reach the client.
    ///
    /// Input is consumed while at most [`MAX_PENDING_OUTPUT`]
    /// octets of replies wait here, and processing stops after a failed
    /// AUTH; the rest is held, and served by the next call that finds the
    /// queue empty. A driver that writes each output before asking for the
    /// next thus holds at most that much for a client that does not read.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.out.is_empty() && self.has_held_commands() {
            self.stopped = false;
            let lines = self.lines;
            self.process_buffered();
            self.after_input(self.last_now, lines);
        }
        self.out.pop_front()
    }

    /// Whether complete command lines are held, waiting for the queued
    /// output to be taken (or for the pause after a failed AUTH); or
    /// message data, waiting for the last piece of body to be taken.
    fn has_held_commands(&self) -> bool {
        match self.state {
            State::Command | State::Auth(_) => command::line_end(&self.input).is_some(),
            State::Data(_) | State::Chunk { .. } | State::SkipChunk { .. } => !self.input.is_empty(),
            _ => false,
        }
    }

    /// Whether the driver should read more input now. False while the
    /// session holds complete commands it has not served yet: the driver
    /// then stops reading from the client (backpressure) and drains
    /// [`Session::poll_output`] first.
    pub fn wants_input(&self) -> bool {
        !self.is_closed() && !self.has_held_commands()
    }

    /// The failed AUTH attempts since the last call: the driver counts them
    /// per client address and pauses before serving more (`limits.
    /// auth_failure_delay_ms` times [`Session::auth_failures`]).
    pub fn take_auth_failures(&mut self) -> u32 {
        std::mem::take(&mut self.auth_failures_unreported)
    }

    /// Error replies sent since the last call that were beyond
    /// `limits.soft_error_limit`, and forgets them. After such a reply the
    /// session serves nothing more until its output is drained, so that
    /// the driver can pause `limits.error_delay_ms` for each (Postfix's
    /// `smtpd_error_sleep_time`).
    pub fn take_slow_errors(&mut self) -> u32 {
        std::mem::take(&mut self.slow_errors_unreported)
    }

    /// Failed AUTH attempts in this session so far.
    pub fn auth_failures(&self) -> u32 {
        self.auth_failures
    }

    /// The driver's verdict that this client address has used up its AUTH
    /// attempts for now: AUTH hears `454 4.7.0` from here on.
    pub fn refuse_auth(&mut self) {
        self.auth_refused = true;
    }

    /// The driver stored (or failed to store) the message last handed out.
    ///
    /// Only now does the client hear about it: `Ok(id)` sends
    /// `250 2.0.0 Ok: queued as ID`, `Err` sends `451 4.3.0` and the client
    /// may try again. That the final `250` waits for this call is how "no
    /// loss" is built: call it only once the message is durable. Until then
    /// the session reads no further input; what the client pipelined is
    /// held and processed here (more than [`MAX_PIPELINED`] octets of it
    /// end the session with `554 5.5.0`). A call with no message waiting is
    /// ignored.
    pub fn message_stored(&mut self, now: Now, result: StoreResult) {
        if !matches!(self.state, State::AwaitStore) {
            return;
        }
        self.state = State::Command;
        match result {
            Ok(id) => {
                self.junk = 0;
                self.reply(250, Enhanced(2, 0, 0), &format!("Ok: queued as {id}"))
            }
            Err(_) => self.error(
                451,
                Enhanced(4, 3, 0),
                "Error: local error in processing, try again later",
            ),
        }
        self.tx = None;
        self.last_now = now;
        let lines = self.lines;
        self.process_buffered();
        self.after_input(now, lines);
    }

    /// Feeds bytes from the client, as they arrived, at `now`.
    ///
    /// Any split of the byte stream gives the same outputs, with one
    /// exception on purpose: bytes that follow a `DATA` command answered
    /// `354` in the same call (or in input held while a message was being
    /// stored) were sent before the client could have seen the `354`, which
    /// a conforming client never does (RFC 2920 §3.1). The `354` is taken
    /// back, the session answers `554 5.5.0` and closes, as Postfix's
    /// `smtpd_forbid_unauth_pipelining` does.
    ///
    /// Input after the session closed is ignored. Drain
    /// [`Session::poll_output`] afterwards.
    pub fn handle_input(&mut self, now: Now, bytes: &[u8]) {
        if matches!(self.state, State::Closed) || bytes.is_empty() {
            return;
        }
        self.last_now = now;
        if !self.has_held_commands() {
            self.stopped = false;
        }
        let lines = self.lines;
        if self.input.is_empty() {
            // The common case: work on the caller's bytes, keep the rest.
            let used = self.process(bytes);
            self.input.extend_from_slice(&bytes[used..]);
        } else {
            self.input.extend_from_slice(bytes);
            self.process_buffered();
        }
        self.after_input(now, lines);
    }

    /// Works through the held input, as far as the state allows.
    fn process_buffered(&mut self) {
        let input = std::mem::take(&mut self.input);
        let used = self.process(&input);
        self.input = input;
        self.input.drain(..used);
    }

    /// Works through `input` until it runs out or the session must wait.
    /// Returns how many octets it used.
    fn process(&mut self, input: &[u8]) -> usize {
        let mut pos = 0;
        while pos < input.len() {
            if self.stopped {
                break;
            }
            let piece_waiting = self.stream_bodies && self.pending_body() >= BODY_PIECE;
            match &mut self.state {
                State::Closed | State::AwaitStore => break,
                State::StartTls => {
                    let taken = self.discard_injected(input.len() - pos);
                    if taken == 0 {
                        break;
                    }
                    pos += taken;
                }
                State::Data(reader) => {
                    if piece_waiting {
                        // Backpressure: the rest waits until the piece is taken.
                        break;
                    }
                    let (n, ended) = reader.feed(&input[pos..]);
                    let piece = reader.take_full_piece();
                    pos += n;
                    self.data_octets += n as u64;
                    if let Some(piece) = piece {
                        self.out.push_back(Output::Body(piece));
                    }
                    if let Some(ended) = ended {
                        self.lines += 1;
                        self.end_of_data(ended);
                    }
                }
                State::Chunk { .. } => {
                    if piece_waiting {
                        break;
                    }
                    let n = self.chunk_input(&input[pos..]);
                    if n == 0 && matches!(self.state, State::Chunk { .. }) {
                        break;
                    }
                    pos += n;
                }
                State::SkipChunk { .. } => pos += self.skip_input(&input[pos..]),
                State::Discard => match memchr::memchr(b'\n', &input[pos..]) {
                    None => pos = input.len(),
                    Some(i) => {
                        pos += i + 1;
                        self.lines += 1;
                        self.state = State::Command;
                        self.error(500, Enhanced(5, 5, 2), "Error: line too long");
                    }
                },
                State::Command | State::Auth(_) => {
                    if self.pending_output() > MAX_PENDING_OUTPUT {
                        // Backpressure: the rest waits until the replies are taken.
                        break;
                    }
                    if matches!(self.state, State::Command) {
                        let rest = &input[pos..];
                        if rest.len() < V2_SIGNATURE.len() && V2_SIGNATURE.starts_with(rest) {
                            // Could still be a version 2 signature (it opens
                            // with an empty line): wait for the rest, so that
                            // how the octets were split never changes the answer.
                            break;
                        }
                        if self.refuse_binary_proxy_header(rest) {
                            pos = input.len();
                            break;
                        }
                    }
                    let Some(i) = command::line_end(&input[pos..]) else {
                        if input.len() - pos > MAX_LINE {
                            pos = input.len();
                            self.state = State::Discard;
                        }
                        break;
                    };
                    let line = &input[pos..pos + i + 1];
                    pos += i + 1;
                    self.lines += 1;
                    let text = line.strip_suffix(b"\n").unwrap_or(line);
                    let text = text.strip_suffix(b"\r").unwrap_or(text);
                    if line.len() > MAX_LINE {
                        self.error(500, Enhanced(5, 5, 2), "Error: line too long");
                    } else if matches!(self.state, State::Auth(_)) {
                        self.auth_response(text);
                    } else {
                        self.command(text);
                    }
                    if matches!(self.state, State::Data(_)) && pos < input.len() {
                        // DATA content sent before the 354 could have been seen.
                        self.out_pop_354();
                        self.reply(554, Enhanced(5, 5, 0), "Error: SMTP protocol synchronization");
                        self.close();
                    }
                }
            }
        }
        pos
    }

    /// Takes back the `354` that was queued for a DATA whose content came
    /// too early: the client gets the refusal instead.
    fn out_pop_354(&mut self) {
        if let Some(Output::Send(b)) = self.out.back_mut() {
            if b.ends_with(b"\r\n") && b.len() >= 5 {
                let start = b[..b.len() - 2]
                    .iter()
                    .rposition(|&c| c == b'\n')
                    .map_or(0, |p| p + 1);
                if b[start..].starts_with(b"354") {
                    b.truncate(start);
                    if b.is_empty() {
                        self.out.pop_back();
                    }
                }
            }
        }
    }

    /// Octets of replies queued and not yet taken.
    fn pending_output(&self) -> usize {
        self.out
            .iter()
            .map(|o| match o {
                Output::Send(b) => b.len(),
                _ => 0,
            })
            .sum()
    }

    /// Octets of body pieces queued and not yet taken.
    fn pending_body(&self) -> usize {
        self.out
            .iter()
            .map(|o| match o {
                Output::Body(b) => b.len(),
                _ => 0,
            })
            .sum()
    }

    fn send(&mut self, bytes: &[u8]) {
        self.send_buf().extend_from_slice(bytes);
    }

    fn close(&mut self) {
        if !matches!(self.state, State::Closed) {
            self.state = State::Closed;
            self.deadline = None;
            self.tx = None;
            self.out.push_back(Output::Close);
        }
    }

    /// The buffer of the last queued `Send`, so replies are joined.
    fn send_buf(&mut self) -> &mut Vec<u8> {
        if !matches!(self.out.back(), Some(Output::Send(_))) {
            self.out.push_back(Output::Send(Vec::with_capacity(256)));
        }
        match self.out.back_mut() {
            Some(Output::Send(b)) => b,
            _ => unreachable!("a Send was just pushed"),
        }
    }

    /// Writes a one-line reply straight into the output, without building
    /// a `Reply` (see [`crate::reply::write_line`]).
    fn reply(&mut self, code: u16, e: Enhanced, text: &str) {
        crate::reply::write_line(self.send_buf(), code, false, Some(e), text);
    }

    /// An error reply; counts towards `max_errors`, which ends the session.
    fn error(&mut self, code: u16, e: Enhanced, text: &str) {
        self.reply(code, e, text);
        self.count_error();
    }

    fn count_error(&mut self) {
        self.errors += 1;
        // Beyond the soft limit each error is followed by a pause the
        // driver takes (`Session::take_slow_errors`) before the next
        // command is served.
        if self.errors > self.policy.config().limits.soft_error_limit {
            self.slow_errors_unreported += 1;
            self.stopped = true;
        }
    }

    fn refusal(&mut self, r: crate::policy::Refusal) {
        r.reply.write_to(self.send_buf());
        if r.reply.code >= 400 {
            self.count_error();
        }
    }

    fn ctx(&self) -> Context<'_> {
        Context {
            client: self.peer.ip,
            helo: self.helo.as_deref(),
            user: self.user.as_deref(),
            sender: self.tx.as_ref().map(|t| &t.from),
            accepted: self.tx.as_ref().map_or(0, |t| t.recipients.len()),
        }
    }

    fn command(&mut self, line: &[u8]) {
        // As Postfix's smtpd_hard_error_limit: the command after the last
        // allowed error is not served.
        if self.errors >= self.policy.config().limits.max_errors.max(1) {
            self.reply(421, Enhanced(4, 7, 0), "Error: too many errors");
            return self.close();
        }
        if self.refused {
            return if line.trim_ascii().eq_ignore_ascii_case(b"QUIT") {
                self.reply(221, Enhanced(2, 0, 0), "Bye");
                self.close()
            } else {
                self.error(503, Enhanced(5, 5, 1), "Error: access denied, send QUIT")
            };
        }
        if self.proxy_command(line) {
            return;
        }
        let cmd = match command::parse(line) {
            Ok(c) => c,
            Err(e) => return self.parse_error(line, e),
        };
        if self.junk_limit_reached(&cmd) {
            self.reply(
                421,
                Enhanced(4, 7, 0),
                "Error: too many commands that move no mail",
            );
            return self.close();
        }
        match cmd {
            Command::Ehlo(name) | Command::Helo(name) => {
                let esmtp = matches!(cmd, Command::Ehlo(_));
                if let Err(r) = self.policy.helo(&self.ctx(), name) {
                    return self.refusal(r);
                }
                self.helo = Some(name.to_string());
                self.esmtp = esmtp;
                self.tx = None;
                self.greet_back(esmtp);
            }
            Command::Mail { from, params } => {
                if self.helo.is_none() {
                    return self.error(503, Enhanced(5, 5, 1), HELO_FIRST);
                }
                if self.tx.is_some() {
                    return self.error(503, Enhanced(5, 5, 1), "Error: nested MAIL command");
                }
                if from.is_utf8() && !params.smtputf8 {
                    return self.error(
                        553,
                        Enhanced(5, 6, 7),
                        "Error: non-ASCII address without SMTPUTF8",
                    );
                }
                let limit = self.policy.config().limits.max_message_size as u64;
                if params.size.is_some_and(|s| s > limit) {
                    return self.error(552, Enhanced(5, 3, 4), "Error: message size exceeds fixed limit");
                }
                let path = match from.to_path() {
                    Ok(p) => p,
                    Err(e) => return self.error(501, Enhanced(5, 1, 7), &format!("Bad sender address: {e}")),
                };
                if let Err(r) = self.policy.mail(&self.ctx(), &path) {
                    return self.refusal(r);
                }
                self.tx = Some(Transaction {
                    from: path,
                    size_hint: params.size.unwrap_or(0).min(limit) as usize,
                    recipients: Vec::new(),
                    smtputf8: params.smtputf8,
                    chunks: None,
                });
                self.reply(250, Enhanced(2, 1, 0), "Ok");
            }
            Command::Rcpt { to } => self.rcpt(to),
            Command::Data => {
                match &self.tx {
                    None => return self.error(503, Enhanced(5, 5, 1), "Error: need MAIL command"),
                    Some(t) if t.recipients.is_empty() => {
                        return self.error(503, Enhanced(5, 5, 1), "Error: no valid recipients");
                    }
                    Some(t) if t.chunks.is_some() => {
                        return self.error(503, Enhanced(5, 5, 1), "Error: DATA after BDAT");
                    }
                    Some(_) => {}
                }
                let sink = self.body_sink();
                let reader = if self.policy.bugs().has(Bug::LfEndsData) {
                    DataReader::with_lf_bug(sink)
                } else {
                    DataReader::with_sink(sink)
                };
                self.state = State::Data(Box::new(reader));
                self.reply(354, Enhanced(2, 0, 0), "End data with <CR><LF>.<CR><LF>");
            }
            Command::Rset => {
                self.tx = None;
                self.reply(250, Enhanced(2, 0, 0), "Ok");
            }
            Command::Noop => self.reply(250, Enhanced(2, 0, 0), "Ok"),
            Command::Quit => {
                self.reply(221, Enhanced(2, 0, 0), "Bye");
                self.close();
            }
            Command::Vrfy(_) => self.reply(
                252,
                Enhanced(2, 5, 0),
                "Cannot VRFY user, but will accept message and attempt delivery",
            ),
            Command::Expn(_) => self.error(502, Enhanced(5, 5, 1), "Error: EXPN not available"),
            Command::Help(_) => self.reply(214, Enhanced(2, 0, 0), "See RFC 5321"),
            Command::Starttls => self.starttls(),
            Command::Auth { mechanism, initial } => self.auth(mechanism, initial),
            Command::Bdat { size, last } => self.bdat(size, last),
        }
    }

    /// Where the body of the message now starting goes (DATA's and BDAT's
    /// alike): kept whole, sized for the declared SIZE, or streamed.
    fn body_sink(&self) -> BodySink {
        let limit = self.policy.config().limits.max_message_size;
        let hint = self.tx.as_ref().map_or(0, |t| t.size_hint);
        if self.stream_bodies {
            BodySink::streaming(limit)
        } else {
            BodySink::whole(limit, hint)
        }
    }

    /// Counts the commands that move no mail, as Postfix's
    /// `smtpd_junk_command_limit`: true when `limits.max_junk_commands` of
    /// them came since the last stored message and this is one more.
    fn junk_limit_reached(&mut self, cmd: &Command<'_>) -> bool {
        if !matches!(
            cmd,
            Command::Noop | Command::Rset | Command::Vrfy(_) | Command::Help(_)
        ) {
            return false;
        }
        self.junk += 1;
        self.junk > self.policy.config().limits.max_junk_commands.max(1)
    }

    fn parse_error(&mut self, line: &[u8], e: ParseError) {
        let is_rcpt = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"RCPT");
        match e {
            ParseError::UnknownCommand => self.error(500, Enhanced(5, 5, 1), "Error: command not recognized"),
            ParseError::BadCharacters => {
                self.error(500, Enhanced(5, 5, 2), "Error: invalid characters in command")
            }
            ParseError::Syntax(why) => self.error(501, Enhanced(5, 5, 4), &format!("Syntax: {why}")),
            ParseError::UnknownParameter => {
                self.error(555, Enhanced(5, 5, 4), "Error: unsupported ESMTP parameter")
            }
            ParseError::Address(a) if is_rcpt => self.error(
                501,
                Enhanced(5, 1, 3),
                &format!("Bad recipient address syntax: {a}"),
            ),
            ParseError::Address(a) => {
                self.error(501, Enhanced(5, 1, 7), &format!("Bad sender address syntax: {a}"))
            }
        }
    }

    fn greet_back(&mut self, esmtp: bool) {
        let host = self.policy.hostname().to_string();
        if !esmtp {
            return self.send(format!("250 {host}\r\n").as_bytes());
        }
        let size = self.policy.config().limits.max_message_size;
        let mut text = format!(
            "250-{host}\r\n250-PIPELINING\r\n250-SIZE {size}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n"
        );
        self.advertise_starttls(&mut text);
        if self.policy.has_users() && !self.auth_needs_tls() {
            text.push_str("250-AUTH PLAIN LOGIN\r\n");
        }
        if self.chunking {
            text.push_str("250-CHUNKING\r\n");
        }
        self.advertise_xclient(&mut text);
        text.push_str("250 HELP\r\n");
        self.send(text.as_bytes());
    }

    fn rcpt(&mut self, to: PathArg<'_>) {
        let Some(tx) = &self.tx else {
            return self.error(503, Enhanced(5, 5, 1), "Error: need MAIL command");
        };
        if to.is_utf8() && !tx.smtputf8 {
            return self.error(
                553,
                Enhanced(5, 6, 7),
                "Error: non-ASCII address without SMTPUTF8",
            );
        }
        let path = match to.to_path() {
            Ok(p) => p,
            Err(e) => {
                return self.error(
                    501,
                    Enhanced(5, 1, 3),
                    &format!("Bad recipient address syntax: {e}"),
                );
            }
        };
        match self.policy.rcpt(&self.ctx(), &path) {
            Decision::Accept { destination, .. } => {
                if let Some(tx) = &mut self.tx {
                    tx.recipients.push(Recipient { path, destination });
                }
                self.reply(250, Enhanced(2, 1, 5), "Ok");
            }
            Decision::Refuse(r) => self.refusal(r),
        }
    }

    /// The end of a message's body, by DATA's `<CRLF>.<CRLF>` or BDAT's
    /// `LAST` chunk: the refusals, or the message handed out to be stored.
    fn end_of_data(&mut self, ended: Ended) {
        self.state = State::Command;
        if self.stream_bodies && !matches!(ended, Ended::Ok(_)) {
            self.out.push_back(Output::DropBody);
        }
        let mut body = match ended {
            Ended::Ok(body) => body,
            Ended::TooBig(_) => {
                self.tx = None;
                return self.error(552, Enhanced(5, 3, 4), "Error: message size exceeds fixed limit");
            }
            Ended::Tainted => {
                self.tx = None;
                return self.error(
                    554,
                    Enhanced(5, 6, 0),
                    "Error: message contains a bare CR, bare LF or NUL (SMTP smuggling?)",
                );
            }
        };
        let Some(tx) = self.tx.take() else {
            if self.stream_bodies {
                self.out.push_back(Output::DropBody);
            }
            return self.error(503, Enhanced(5, 5, 1), "Error: need MAIL command");
        };
        self.state = State::AwaitStore;
        self.deadline = None;
        if self.stream_bodies && !body.is_empty() {
            self.out.push_back(Output::Body(std::mem::take(&mut body)));
        }
        self.out.push_back(Output::Message(Box::new(Message {
            client: self.peer.ip,
            helo: self.helo.clone().unwrap_or_default(),
            user: self.user.clone(),
            from: tx.from,
            recipients: tx.recipients,
            body,
        })));
    }
}
