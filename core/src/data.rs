//! The DATA phase reader: dot-unstuffing and the end-of-data sequence.
//!
//! Only `<CRLF>.<CRLF>` ends a message. A bare LF or bare CR never starts a
//! new line here, so `\n.\n`, `\r.\r\n`, `\r\n.\r\r\n` and the other SMTP
//! smuggling sequences stay inside the message instead of ending it; the
//! message is then refused as a whole because it holds a bare CR or LF. That
//! is the inbound half of the smuggling defence; the outbound half is that
//! nothing with a bare CR or LF is ever handed on.
//!
//! The unstuffed octets go to a [`BodySink`] (`data/sink.rs`), which keeps
//! the body whole or hands it out in pieces.

mod sink;

pub use sink::BODY_PIECE;
pub(crate) use sink::BodySink;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// After a CRLF (or at the start of the data).
    LineStart,
    /// A `.` at the start of a line: a stuffing dot or the start of the end.
    Dot,
    /// `.` `CR` at the start of a line: one LF away from the end.
    DotCr,
    /// Inside a line.
    Middle,
    /// A CR inside a line, waiting to see whether an LF follows.
    Cr,
}

/// Streams a message body in, passes it to its [`BodySink`], and says
/// where it ended.
#[derive(Debug)]
pub struct DataReader {
    state: State,
    sink: BodySink,
    /// A bare CR, a bare LF or a NUL was seen.
    tainted: bool,
    /// Injected bug `lf-ends-data`: a bare LF ends a line, as in the
    /// servers that SMTP smuggling exploits.
    lf_ends_line: bool,
}

/// How the message ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Well formed and within the limit: the unstuffed body, CRLF lines
    /// (while streaming, the part not handed out yet).
    Ok(Vec<u8>),
    /// Larger than the limit; the body was discarded as it streamed.
    TooBig(usize),
    /// Holds a bare CR, a bare LF or a NUL.
    Tainted,
}

impl DataReader {
    /// A reader that keeps the whole body, up to `limit` octets.
    #[cfg(test)]
    pub fn new(limit: usize) -> DataReader {
        DataReader::with_sink(BodySink::whole(limit, 0))
    }

    pub(crate) fn with_sink(sink: BodySink) -> DataReader {
        DataReader {
            state: State::LineStart,
            sink,
            tainted: false,
            lf_ends_line: false,
        }
    }

    /// The reader with the `lf-ends-data` bug switched on.
    pub(crate) fn with_lf_bug(sink: BodySink) -> DataReader {
        DataReader {
            lf_ends_line: true,
            ..DataReader::with_sink(sink)
        }
    }

    /// Octets of body held in memory: never more than the limit, nor more
    /// than a piece while streaming.
    pub fn buffered(&self) -> usize {
        self.sink.buffered()
    }

    /// A full piece of body to hand out now (streaming only).
    pub(crate) fn take_full_piece(&mut self) -> Option<Vec<u8>> {
        self.sink.take_full_piece()
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.sink.append(bytes);
    }

    fn taint(&mut self) {
        if !self.tainted {
            self.tainted = true;
            // Refused whatever follows: keep (and write) none of it.
            self.sink.drop_body();
        }
    }

    /// Feeds bytes. Returns how many octets of `input` were taken, and how
    /// the message ended if the end-of-data sequence was among them (the
    /// rest of `input` is then the next command). Fewer than all octets
    /// are taken without an end only while streaming, when a piece is full:
    /// take it ([`DataReader::take_full_piece`]) and feed the rest.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Option<Ended>) {
        let mut i = 0;
        while i < input.len() {
            let room = self.sink.room();
            if room == 0 {
                return (i, None);
            }
            match self.state {
                State::LineStart | State::Middle => {
                    // Fast path: whole CRLF lines that start with no dot
                    // and hold no other CR, LF or NUL go to the sink in one
                    // piece, as they came.
                    let end = input.len().min(i.saturating_add(room));
                    let (n, state) = clean_run(&input[i..end], self.state);
                    self.state = state;
                    if n > 0 {
                        self.emit(&input[i..i + n]);
                        i += n;
                        continue;
                    }
                    if state == State::LineStart {
                        // A dot at the start of a line.
                        i += 1;
                        self.state = State::Dot;
                        continue;
                    }
                    // A CR, LF or NUL inside a line.
                    let b = input[i];
                    i += 1;
                    if b == 0 {
                        self.taint();
                        self.emit(b"\0");
                    } else if b == b'\r' {
                        self.state = State::Cr;
                    } else if self.lf_ends_line {
                        self.emit(b"\r\n");
                        self.state = State::LineStart;
                    } else {
                        // A bare LF: flagged, and it does NOT start a line.
                        self.taint();
                        self.emit(b"\n");
                    }
                }
                State::Dot => {
                    if input[i] == b'\r' {
                        i += 1;
                        self.state = State::DotCr;
                    } else if input[i] == b'\n' && self.lf_ends_line {
                        return (i + 1, Some(self.finish()));
                    } else {
                        // The dot was stuffing: drop it, the rest is text.
                        self.state = State::Middle;
                    }
                }
                State::DotCr => {
                    let b = input[i];
                    i += 1;
                    if b == b'\n' {
                        return (i, Some(self.finish()));
                    }
                    // `.` CR then not LF: the dot was stuffing, the CR is bare.
                    self.taint();
                    self.emit(b"\r");
                    if b == b'\r' {
                        self.state = State::Cr;
                    } else {
                        self.state = State::Middle;
                        i -= 1;
                    }
                }
                State::Cr => {
                    let b = input[i];
                    if b == b'\n' {
                        i += 1;
                        self.emit(b"\r\n");
                        self.state = State::LineStart;
                    } else {
                        // The CR was bare; look at this byte again as text.
                        self.taint();
                        self.emit(b"\r");
                        if b == b'\r' {
                            i += 1;
                        } else {
                            self.state = State::Middle;
                        }
                    }
                }
            }
        }
        (i, None)
    }

    fn finish(&mut self) -> Ended {
        if self.sink.too_big() {
            Ended::TooBig(self.sink.size())
        } else if self.tainted {
            Ended::Tainted
        } else {
            Ended::Ok(self.sink.take())
        }
    }
}

/// The longest prefix of `b`, read from `state` (`LineStart` or `Middle`),
/// that is plain text: lines ended by CRLF, none beginning with a dot, no
/// other CR, LF or NUL. Returns its length and the state after it; the
/// octet that stopped it (a dot at a line's start, or a CR, LF or NUL that
/// is not a whole CRLF inside `b`) is left to the state machine. One SIMD
/// search per line, over as many lines as `b` holds.
fn clean_run(b: &[u8], state: State) -> (usize, State) {
    let dot_or_end = |p: usize| b.get(p).is_none_or(|&c| c == b'.');
    if state == State::LineStart && dot_or_end(0) {
        return (0, State::LineStart);
    }
    let mut p = 0;
    loop {
        match memchr::memchr3(b'\r', b'\n', 0, &b[p..]) {
            None => return (b.len(), State::Middle),
            Some(k) if b[p + k] == b'\r' && b.get(p + k + 1) == Some(&b'\n') => {
                p += k + 2;
                if dot_or_end(p) {
                    return (p, State::LineStart);
                }
            }
            Some(k) => return (p + k, State::Middle),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> Option<(usize, Ended)> {
        match DataReader::new(1 << 20).feed(input) {
            (n, Some(e)) => Some((n, e)),
            (_, None) => None,
        }
    }

    #[test]
    fn plain_message_and_unstuffing() {
        let (n, e) = run(b"Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n").unwrap();
        assert_eq!(n, 24);
        assert_eq!(e, Ended::Ok(b"Subject: x\r\n\r\n.dot\r\n".to_vec()));
    }

    #[test]
    fn empty_message_ends_at_once() {
        assert_eq!(run(b".\r\n"), Some((3, Ended::Ok(Vec::new()))));
    }

    #[test]
    fn smuggling_sequences_never_end_data() {
        for seq in crate::check::SMUGGLING_SEQUENCES {
            let mut input = b"a".to_vec();
            input.extend_from_slice(seq);
            input.extend_from_slice(b"MAIL FROM:<x@y.example>\r\n");
            assert_eq!(run(&input), None, "{seq:?} ended DATA");
            input.extend_from_slice(b".\r\n");
            // Where the sequence left us mid-line, the final ".\r\n" is
            // text too; close the line first.
            let end = run(&input).or_else(|| {
                input.extend_from_slice(b"\r\n.\r\n");
                run(&input)
            });
            assert_eq!(end.map(|(_, e)| e), Some(Ended::Tainted), "{seq:?}");
        }
    }

    #[test]
    fn split_at_every_point_gives_the_same_result() {
        let input = b"a\r\n..b\r\nc\rd\r\n.\r\nNEXT";
        let whole = run(input);
        for cut in 0..input.len() {
            let mut r = DataReader::new(1 << 20);
            let got = match r.feed(&input[..cut]) {
                (n, Some(e)) => Some((n, e)),
                (n, None) => {
                    assert_eq!(n, cut, "a whole reader takes all it is fed");
                    match r.feed(&input[cut..]) {
                        (m, Some(e)) => Some((m + cut, e)),
                        (_, None) => None,
                    }
                }
            };
            assert_eq!(got, whole, "cut at {cut}");
        }
    }

    /// Feeds `input` in the pieces `cuts` makes (each cut an offset into
    /// it), then whatever is left; what ended, and where.
    fn run_in_pieces(input: &[u8], cuts: &[usize], lf_bug: bool) -> Option<(usize, Ended)> {
        let sink = BodySink::whole(1 << 20, 0);
        let mut r = if lf_bug {
            DataReader::with_lf_bug(sink)
        } else {
            DataReader::with_sink(sink)
        };
        let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
        bounds.push(input.len());
        bounds.sort_unstable();
        let mut pos = 0;
        for b in bounds {
            if b <= pos {
                continue;
            }
            match r.feed(&input[pos..b]) {
                (n, Some(e)) => return Some((pos + n, e)),
                (n, None) => assert_eq!(n, b - pos, "a whole reader takes all it is fed"),
            }
            pos = b;
        }
        None
    }

    proptest::proptest! {
        // Small inputs run fast; more cases find the rarer orders (a bare
        // CR right after a line end, say).
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// The whole-line fast path and the octet-by-octet state machine
        /// agree: an input fed in one piece reads as the same input fed one
        /// octet at a time, or in any other pieces, with or without the
        /// `lf-ends-data` bug.
        #[test]
        fn the_fast_path_reads_as_octet_by_octet(
            input in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b'.', b'\r', b'\n', 0u8, b'\r', b'\n', b'a']),
                0..64,
            ),
            cuts in proptest::collection::vec(0usize..64, 0..6),
            lf_bug in proptest::bool::ANY,
        ) {
            let every: Vec<usize> = (1..input.len()).collect();
            let octet_by_octet = run_in_pieces(&input, &every, lf_bug);
            proptest::prop_assert_eq!(&run_in_pieces(&input, &[], lf_bug), &octet_by_octet);
            proptest::prop_assert_eq!(&run_in_pieces(&input, &cuts, lf_bug), &octet_by_octet);
        }
    }

    /// The octet after a bare CR (inside a line, or after a line's dot) is
    /// read as text: were it skipped, the LF after it would complete a
    /// CRLF, and the dot line after that would end the message.
    #[test]
    fn the_octet_after_a_bare_cr_is_text() {
        assert_eq!(run(b"a\r\n.\rx\n.\r\nMAIL FROM:<x@y.example>\r\n"), None);
        assert_eq!(run(b"a\rx\n.\r\nMAIL FROM:<x@y.example>\r\n"), None);
        // A bare CR at the start of a line, right after a whole one.
        assert_eq!(run(b"a\r\n\rx\r\n.\r\n"), Some((10, Ended::Tainted)));
        // And it is counted: `\r`, `x`, CRLF are four octets, one past the limit.
        assert_eq!(
            DataReader::new(3).feed(b".\rx\r\n.\r\n"),
            (8, Some(Ended::TooBig(4)))
        );
    }

    /// The injected `lf-ends-data` bug changes only what ends a line: dots
    /// are still unstuffed, and what follows the end is the next command.
    #[test]
    fn the_lf_bug_ends_at_dot_lf_and_still_unstuffs() {
        assert_eq!(
            run_in_pieces(b"a\r\n..b\r\n.\r\n", &[], true),
            Some((11, Ended::Ok(b"a\r\n.b\r\n".to_vec())))
        );
        assert_eq!(
            run_in_pieces(b"a\n.\nQUIT\r\n", &[], true),
            Some((4, Ended::Ok(b"a\r\n".to_vec())))
        );
    }

    #[test]
    fn oversize_is_discarded_as_it_streams() {
        let mut r = DataReader::new(10);
        assert_eq!(r.feed(&[b'x'; 100]), (100, None));
        assert!(r.buffered() <= 10);
        assert_eq!(r.feed(b"\r\n.\r\n"), (5, Some(Ended::TooBig(102))));
    }

    #[test]
    fn streaming_hands_out_pieces_that_make_the_body() {
        let line = b"0123456789abcdefghijklmnopqrstuvwxyz\r\n";
        let mut input = Vec::new();
        while input.len() < 5 * BODY_PIECE {
            input.extend_from_slice(line);
        }
        let body = input.clone();
        input.extend_from_slice(b".\r\n");
        let mut r = DataReader::with_sink(BodySink::streaming(1 << 30));
        let (mut got, mut pos) = (Vec::new(), 0);
        let ended = loop {
            let (n, ended) = r.feed(&input[pos..]);
            pos += n;
            assert!(r.buffered() <= BODY_PIECE + 2);
            if let Some(p) = r.take_full_piece() {
                got.extend_from_slice(&p);
            }
            if let Some(e) = ended {
                break e;
            }
            assert!(n > 0, "no progress at {pos}");
        };
        let Ended::Ok(last) = ended else {
            panic!("{ended:?}")
        };
        got.extend_from_slice(&last);
        assert_eq!(pos, input.len());
        assert_eq!(got, body);
    }
}
