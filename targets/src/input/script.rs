//! Scripted sessions: a sequence of SMTP steps built from the grammar,
//! rendered to the bytes a client would send.

use std::net::IpAddr;

use arbitrary::Arbitrary;
use base64::Engine;
use relayguard_core::Config;

use super::grammar::{Addr, BODY_LINES, BodyPiece, HeloName};
use super::{FuzzConfig, USERS, peer};

/// A step of a scripted session.
#[derive(Arbitrary, Clone, Debug)]
pub enum ScriptStep {
    Ehlo(HeloName),
    Helo(HeloName),
    Mail(Addr, u8),
    MailNull,
    Rcpt(Addr),
    Data(Vec<BodyPiece>, bool),
    Rset,
    Noop,
    Quit,
    AuthPlain(u8, bool),
    Vrfy(Addr),
    Raw(Vec<u8>),
    /// `STARTTLS`; with `Some`, a MAIL and a RCPT pipelined after it in
    /// the same chunk (the command injection of CVE-2011-0411).
    StartTls(Option<(Addr, Addr)>),
    /// `BDAT n [LAST]` and a chunk of body pieces; the size byte picks the
    /// declared size: the chunk's, one more or one less (the next command
    /// swallowed, or part of the chunk read as one), zero, or far past any
    /// limit.
    Bdat(Vec<BodyPiece>, u8, bool),
}

/// The `session_script` target's input.
#[derive(Arbitrary, Clone, Debug)]
pub struct Script {
    pub config: FuzzConfig,
    pub peer: u8,
    pub auth: u8,
    pub split: u8,
    pub steps: Vec<ScriptStep>,
}

impl Script {
    pub fn peer(&self) -> IpAddr {
        peer(self.peer)
    }

    pub fn auth(&self) -> Option<&'static str> {
        // Out-of-band authentication is rarer than none: it short-cuts trust.
        if self.auth >= 200 {
            self.config.user_name(self.auth)
        } else {
            None
        }
    }

    /// The client's bytes, as one chunk per step (the body of DATA is its
    /// own chunk, after the command's).
    pub fn render(&self, c: &Config) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for step in &self.steps {
            let line = |s: String| format!("{s}\r\n").into_bytes();
            match step {
                ScriptStep::Ehlo(h) => out.push(line(format!("EHLO {}", helo(h, c)))),
                ScriptStep::Helo(h) => out.push(line(format!("HELO {}", helo(h, c)))),
                ScriptStep::Mail(a, p) => {
                    let params = match p % 5 {
                        0 => "",
                        1 => " SIZE=100",
                        2 => " BODY=8BITMIME",
                        3 => " SMTPUTF8",
                        _ => " AUTH=<>",
                    };
                    out.push(line(format!("MAIL FROM:<{}>{params}", a.render(c))))
                }
                ScriptStep::MailNull => out.push(line("MAIL FROM:<>".into())),
                ScriptStep::Rcpt(a) => out.push(line(format!("RCPT TO:<{}>", a.render(c)))),
                ScriptStep::Data(pieces, end) => {
                    out.push(line("DATA".into()));
                    let mut body = body_bytes(pieces, c);
                    if *end {
                        if !body.ends_with(b"\r\n") {
                            body.extend_from_slice(b"\r\n");
                        }
                        body.extend_from_slice(b".\r\n");
                    }
                    if !body.is_empty() {
                        out.push(body);
                    }
                }
                ScriptStep::Bdat(pieces, size, last) => {
                    let body = body_bytes(pieces, c);
                    let n = body.len() as u64;
                    let declared = match size % 5 {
                        0 => n,
                        1 => n + 1,
                        2 => n.saturating_sub(1),
                        3 => 0,
                        _ => 99_999_999_999,
                    };
                    let mut chunk = line(format!("BDAT {declared}{}", if *last { " LAST" } else { "" }));
                    chunk.extend_from_slice(&body);
                    out.push(chunk);
                }
                ScriptStep::Rset => out.push(line("RSET".into())),
                ScriptStep::Noop => out.push(line("NOOP".into())),
                ScriptStep::Quit => out.push(line("QUIT".into())),
                ScriptStep::AuthPlain(u, good) => {
                    let (name, pw, _) = USERS[*u as usize % USERS.len()];
                    let pw = if *good { pw } else { "wrong" };
                    let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{name}\0{pw}"));
                    out.push(line(format!("AUTH PLAIN {token}")));
                }
                ScriptStep::Vrfy(a) => out.push(line(format!("VRFY <{}>", a.render(c)))),
                ScriptStep::StartTls(injected) => {
                    let mut b = line("STARTTLS".into());
                    if let Some((from, to)) = injected {
                        b.extend(line(format!("MAIL FROM:<{}>", from.render(c))));
                        b.extend(line(format!("RCPT TO:<{}>", to.render(c))));
                    }
                    out.push(b);
                }
                ScriptStep::Raw(b) => {
                    if !b.is_empty() {
                        out.push(b.clone())
                    }
                }
            }
        }
        out
    }

    /// The rendered steps as the chunks fed to the session: each step its
    /// own chunk, or (split bit 0) commands pipelined together up to a
    /// DATA, or (bit 1) each chunk cut in two.
    pub fn chunks(&self, rendered: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let mut pipelined = false;
        for r in rendered {
            let is_command = !pipelined_barrier(chunks.last());
            if self.split & 1 != 0 && pipelined && is_command {
                chunks.last_mut().unwrap().extend_from_slice(r);
            } else {
                chunks.push(r.clone());
            }
            pipelined = true;
        }
        if self.split & 2 != 0 {
            let at = (self.split >> 2) as usize;
            chunks = chunks
                .into_iter()
                .flat_map(|c| {
                    if c.len() < 2 {
                        vec![c]
                    } else {
                        let k = 1 + at % (c.len() - 1);
                        vec![c[..k].to_vec(), c[k..].to_vec()]
                    }
                })
                .collect();
        }
        chunks
    }
}

/// True when the previous chunk ends with a DATA command: what follows is a
/// body and must wait for the 354.
fn pipelined_barrier(last: Option<&Vec<u8>>) -> bool {
    last.is_none_or(|l| l.len() >= 6 && l[l.len() - 6..].eq_ignore_ascii_case(b"DATA\r\n"))
}

/// The body bytes of DATA's or BDAT's pieces, as a client would send them
/// (dot-stuffing as the piece says).
fn body_bytes(pieces: &[BodyPiece], c: &Config) -> Vec<u8> {
    let mut body = Vec::new();
    for p in pieces {
        match p {
            BodyPiece::Line(i, stuff) => {
                let t = BODY_LINES[*i as usize % BODY_LINES.len()];
                if *stuff && t.starts_with('.') {
                    body.push(b'.');
                }
                body.extend_from_slice(t.as_bytes());
                body.extend_from_slice(b"\r\n");
            }
            BodyPiece::Smuggle(s) => body.extend_from_slice(s.bytes()),
            BodyPiece::Inject(s, from, to) => {
                body.extend_from_slice(s.bytes());
                body.extend_from_slice(
                    format!(
                        "MAIL FROM:<{}>\r\nRCPT TO:<{}>\r\nDATA\r\nSubject: smuggled\r\n",
                        from.render(c),
                        to.render(c)
                    )
                    .as_bytes(),
                );
            }
        }
    }
    body
}

fn helo(h: &HeloName, c: &Config) -> String {
    match h {
        HeloName::Foreign => "client.example.org".into(),
        HeloName::Local(d) => d.render(c),
        HeloName::OwnLiteral => "[198.51.100.25]".into(),
        HeloName::Partner => "partner.example".into(),
    }
}
