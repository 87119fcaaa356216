//! BDAT (RFC 3030 CHUNKING): the message comes in chunks of a declared
//! size, with no dot-stuffing and no end-of-data line.
//!
//! The octets of a chunk are counted, never read as lines, so nothing
//! inside a chunk can end it or start a command; what does the harm is the
//! next hop. A chunk is raw, and a bare CR or LF in it reaches a server
//! downstream as a line end once the message is forwarded with DATA (the
//! SMTP smuggling CVEs of December 2023 needed PIPELINING and CHUNKING
//! together). So the joined chunks pass the same rule as DATA's body: a bare
//! CR, a bare LF or a NUL anywhere refuses the message whole, at `LAST`,
//! with DATA's `554 5.6.0` (see `docs/design.md "CHUNKING"`).
//!
//! Every octet goes through [`BodySink::append`], as DATA's do, so the size
//! limit and streaming are DATA's; the end of the message is DATA's too
//! ([`Session::end_of_data`]). A declared size past
//! `limits.max_message_size`, alone or with the chunks before it, is refused
//! at the command, before any of its octets is kept. A refused chunk's
//! octets are skipped, whatever they hold: RFC 3030 §2 says they follow the
//! command whatever the reply, and reading them as commands would let a
//! client smuggle commands in a body.

use super::{Output, Session, State};
use crate::check::Bug;
use crate::data::{BodySink, Ended};
use crate::reply::Enhanced;

/// The body of a BDAT transaction, across its chunks.
#[derive(Debug)]
pub(super) struct Chunks {
    sink: BodySink,
    /// A bare CR, a bare LF or a NUL was seen in some chunk.
    tainted: bool,
    /// The last octet taken was a CR: the next must be an LF.
    cr: bool,
    /// The last octet taken, to tell whether the body ends its last line.
    last: Option<u8>,
}

impl Chunks {
    fn new(sink: BodySink) -> Chunks {
        Chunks {
            sink,
            tainted: false,
            cr: false,
            last: None,
        }
    }

    /// Octets of body held in memory.
    pub(super) fn buffered(&self) -> usize {
        self.sink.buffered()
    }

    /// Takes octets of a chunk: checks them for bare CR, bare LF and NUL
    /// across chunk boundaries, then appends them. With `lf_passes` (the
    /// injected bug `bdat-bare-lf-passes`) a bare LF is let through.
    fn take(&mut self, bytes: &[u8], lf_passes: bool) {
        let mut i = 0;
        while i < bytes.len() && !self.tainted {
            if self.cr {
                self.cr = false;
                if bytes[i] != b'\n' {
                    self.taint();
                }
                i += 1;
                continue;
            }
            i += memchr::memchr3(b'\r', b'\n', 0, &bytes[i..]).unwrap_or(bytes.len() - i);
            let Some(&b) = bytes.get(i) else { break };
            i += 1;
            match b {
                b'\r' => self.cr = true,
                b'\n' if lf_passes => {}
                _ => self.taint(),
            }
        }
        if let Some(&b) = bytes.last() {
            self.last = Some(b);
        }
        self.sink.append(bytes);
    }

    fn taint(&mut self) {
        self.tainted = true;
        // Refused whatever follows: keep (and hand out) none of it.
        self.sink.drop_body();
    }

    /// The end of the message: a CR at the very end is bare, and a body
    /// whose last line has no line end gets a CRLF, so that it ends where
    /// the client ended it when it is forwarded with DATA.
    fn finish(&mut self) -> Ended {
        if self.cr {
            self.taint();
        }
        if !self.tainted && self.last.is_some_and(|b| b != b'\n') {
            self.sink.append(b"\r\n");
        }
        if self.sink.too_big() {
            Ended::TooBig(self.sink.size())
        } else if self.tainted {
            Ended::Tainted
        } else {
            Ended::Ok(self.sink.take())
        }
    }
}

impl Session {
    /// `BDAT size [LAST]`. A chunk is taken only in a transaction with an
    /// accepted recipient and within the size limit; otherwise it is
    /// refused at once and its octets skipped.
    pub(super) fn bdat(&mut self, size: u64, last: bool) {
        if !self.chunking {
            self.error(502, Enhanced(5, 5, 1), "Error: CHUNKING not offered");
            return self.skip_chunk(size);
        }
        let refusal = match &self.tx {
            None => Some("Error: need MAIL command"),
            Some(t) if t.recipients.is_empty() => Some("Error: no valid recipients"),
            Some(_) => None,
        };
        if let Some(why) = refusal {
            self.error(503, Enhanced(5, 5, 1), why);
            return self.skip_chunk(size);
        }
        let limit = self.policy.config().limits.max_message_size;
        let before = self
            .tx
            .as_ref()
            .and_then(|t| t.chunks.as_ref())
            .map_or(0, |c| c.sink.size());
        if size.saturating_add(before as u64) > limit as u64 {
            // DATA's refusal of an oversized body, before any octet of
            // this chunk is kept; what earlier chunks handed out is dropped.
            self.end_of_data(Ended::TooBig(limit.saturating_add(1)));
            return self.skip_chunk(size);
        }
        let sink = self.body_sink();
        if let Some(t) = &mut self.tx {
            t.chunks.get_or_insert_with(|| Box::new(Chunks::new(sink)));
        }
        self.state = State::Chunk {
            size,
            left: size,
            last,
        };
        if size == 0 {
            self.end_of_chunk(size, last);
        }
    }

    /// Skips the `size` octets of a refused chunk.
    fn skip_chunk(&mut self, size: u64) {
        if size > 0 && !self.is_closed() {
            self.state = State::SkipChunk { left: size };
        }
    }

    /// Feeds octets of the chunk being read; returns how many it took.
    /// Fewer than offered only when the chunk ends, or while streaming
    /// when a piece of body is full.
    pub(super) fn chunk_input(&mut self, input: &[u8]) -> usize {
        let lf_passes = self.policy.bugs().has(Bug::BdatBareLfPasses);
        let State::Chunk { size, left, last } = &mut self.state else {
            return 0;
        };
        let (size, last) = (*size, *last);
        let Some(chunks) = self.tx.as_mut().and_then(|t| t.chunks.as_mut()) else {
            // No transaction to add to; cannot happen, but skip rather than parse.
            let left = *left;
            self.state = State::SkipChunk { left };
            return 0;
        };
        let n = (*left).min(input.len() as u64).min(chunks.sink.room() as u64) as usize;
        chunks.take(&input[..n], lf_passes);
        *left -= n as u64;
        let done = *left == 0;
        let piece = chunks.sink.take_full_piece();
        self.data_octets += n as u64;
        if let Some(piece) = piece {
            self.out.push_back(Output::Body(piece));
        }
        if done {
            self.end_of_chunk(size, last);
        }
        n
    }

    /// Skips octets of a refused chunk; returns how many it took.
    pub(super) fn skip_input(&mut self, input: &[u8]) -> usize {
        let State::SkipChunk { left } = &mut self.state else {
            return 0;
        };
        let n = (*left).min(input.len() as u64);
        *left -= n;
        if *left == 0 {
            self.lines += 1;
            self.state = State::Command;
        }
        self.data_octets += n;
        n as usize
    }

    /// A chunk is in: `250` for one that is not the last, DATA's end for
    /// the last (the final `250` once the message is stored).
    fn end_of_chunk(&mut self, size: u64, last: bool) {
        self.lines += 1;
        self.state = State::Command;
        if !last {
            return self.reply(250, Enhanced(2, 0, 0), &format!("{size} octets received"));
        }
        let chunks = self.tx.as_mut().and_then(|t| t.chunks.take());
        // There is always a body here (`bdat` made it); refuse if not.
        let ended = chunks.map_or(Ended::Tainted, |mut c| c.finish());
        self.end_of_data(ended);
    }
}
