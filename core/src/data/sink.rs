//! Where a message's body goes as it arrives: kept whole for a driver that
//! wants the body in the [`Message`](crate::Message), or handed out in
//! pieces of at most [`BODY_PIECE`] octets to a driver that streams it to
//! its spool, so that a session holds a bounded buffer whatever
//! `limits.max_message_size` says.
//!
//! Every way a body comes in (DATA's dot-unstuffing reader, and any other
//! framing of the body) appends through [`BodySink::append`], so the size
//! limit is applied in one place, before anything is kept.

/// The largest piece of body a streaming session hands out at once
/// ([`Output::Body`](crate::Output::Body)), give or take the two octets of
/// a line end.
pub const BODY_PIECE: usize = 64 * 1024;

/// The body of the message being received.
#[derive(Debug)]
pub(crate) struct BodySink {
    /// The body (whole mode) or the piece not yet handed out (streaming).
    buf: Vec<u8>,
    limit: usize,
    /// Octets appended so far, including the ones not kept.
    size: usize,
    /// Hand the body out in pieces instead of keeping it whole.
    streaming: bool,
    /// The message is refused whatever follows: nothing more is kept.
    dropped: bool,
}

impl BodySink {
    /// A sink that keeps the whole body (up to `limit`), its buffer sized
    /// for the `declared` SIZE (or a few KiB) so that a typical message
    /// needs one allocation.
    pub(crate) fn whole(limit: usize, declared: usize) -> BodySink {
        BodySink {
            buf: Vec::with_capacity(declared.max(8 * 1024).min(limit)),
            limit,
            size: 0,
            streaming: false,
            dropped: false,
        }
    }

    /// A sink that hands the body out in pieces of [`BODY_PIECE`].
    pub(crate) fn streaming(limit: usize) -> BodySink {
        BodySink {
            buf: Vec::new(),
            limit,
            size: 0,
            streaming: true,
            dropped: false,
        }
    }

    /// The one entry point for body octets. Past the limit, or once the
    /// message is known to be refused, octets are only counted.
    pub(crate) fn append(&mut self, bytes: &[u8]) {
        self.size = self.size.saturating_add(bytes.len());
        if self.size <= self.limit && !self.dropped {
            self.buf.extend_from_slice(bytes);
        } else if self.buf.capacity() > 0 {
            self.buf = Vec::new();
        }
    }

    /// The message will be refused whatever follows (a bare CR or LF was
    /// seen): what is held goes, and nothing more is kept.
    pub(crate) fn drop_body(&mut self) {
        self.dropped = true;
        self.buf = Vec::new();
    }

    /// Octets the sink may take before its piece must be handed out; the
    /// feeder stops there. Unbounded when the body is kept whole.
    pub(crate) fn room(&self) -> usize {
        if self.streaming {
            BODY_PIECE.saturating_sub(self.buf.len())
        } else {
            usize::MAX
        }
    }

    /// The piece to hand out now: a full one while streaming, else none.
    pub(crate) fn take_full_piece(&mut self) -> Option<Vec<u8>> {
        (self.streaming && self.buf.len() >= BODY_PIECE).then(|| std::mem::take(&mut self.buf))
    }

    /// Octets appended so far, kept or not.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Whether the body is over the limit.
    pub(crate) fn too_big(&self) -> bool {
        self.size > self.limit
    }

    /// Octets held: never more than the limit, nor more than a piece
    /// while streaming.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// What is held: the whole body, or the last piece.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_holds_at_most_a_piece() {
        let mut s = BodySink::streaming(1 << 30);
        let mut out = 0;
        for _ in 0..100 {
            let room = s.room().min(10_000);
            s.append(&vec![b'x'; room]);
            assert!(s.buffered() <= BODY_PIECE);
            out += s.take_full_piece().map_or(0, |p| p.len());
        }
        assert_eq!(out + s.take().len(), s.size());
    }

    #[test]
    fn past_the_limit_nothing_is_kept() {
        let mut s = BodySink::whole(10, 0);
        s.append(b"12345");
        s.append(b"123456");
        assert!(s.too_big());
        assert_eq!(s.buffered(), 0);
        assert_eq!(s.size(), 11);
    }

    #[test]
    fn a_dropped_body_keeps_nothing() {
        let mut s = BodySink::streaming(100);
        s.append(b"abc");
        s.drop_body();
        s.append(b"def");
        assert_eq!(s.buffered(), 0);
        assert_eq!(s.size(), 6);
    }
}
