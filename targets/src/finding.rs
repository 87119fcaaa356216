//! Findings as corpus transcripts (docs/design.md "Transcripts"), so that
//! `relayguard replay` and `cargo test` keep them forever.

use std::net::IpAddr;
use std::path::PathBuf;

use relayguard_core::check::buggify::Bugs;
use relayguard_core::check::drive::Driver;
use relayguard_core::check::transcript::{Step, Transcript};

use crate::input::FuzzConfig;

/// A session-shaped input, decoded: what a transcript needs.
#[derive(Clone, Debug)]
pub struct Case {
    pub config: FuzzConfig,
    pub peer: IpAddr,
    pub auth: Option<&'static str>,
    pub chunks: Vec<Vec<u8>>,
}

impl Case {
    /// The transcript, its `@config` pointing at `config_file` (relative to
    /// the transcript's directory), one raw `C~` step per chunk.
    pub fn transcript(&self, origin: &str, config_file: &str) -> Transcript {
        Transcript {
            comments: vec![format!(
                "Found by the fuzz target {origin}; the client's bytes as fed, one C~ line per chunk."
            )],
            peer: Some(self.peer),
            proxy: None,
            config: Some(PathBuf::from(config_file)),
            auth: self.auth.map(str::to_string),
            // A finding is an attack on the property: the relay must stay closed.
            expect: Some(relayguard_core::check::transcript::Expect::Closed),
            source: Some(format!("fuzz/{origin}")),
            truncated: None,
            steps: self.steps(),
        }
    }

    /// One raw step per chunk, and a `T: handshake` after each chunk that
    /// a `220` to STARTTLS answered, where the fuzz driver did one.
    fn steps(&self) -> Vec<Step> {
        let mut d = self.config.build(Bugs::NONE).map(|policy| {
            let offer = policy.config().tls.cert.is_some();
            let mut d = Driver::new(policy, self.peer);
            if offer {
                d.offer_tls();
            }
            if let Some(user) = self.auth {
                d.authenticate(user);
            }
            d
        });
        let mut steps = Vec::new();
        for (i, c) in self.chunks.iter().enumerate() {
            steps.push(Step::Send {
                raw: true,
                bytes: c.clone(),
                line: i + 1,
            });
            if let Some(d) = &mut d {
                d.feed(c);
                if d.handshake() {
                    steps.push(Step::Tls { line: 0 });
                }
            }
        }
        steps
    }
}

/// The configuration and transcript of a finding, as text for a panic message.
pub fn transcript_text(
    config: &FuzzConfig,
    peer: IpAddr,
    auth: Option<&'static str>,
    chunks: &[&[u8]],
    origin: &str,
) -> String {
    let case = Case {
        config: *config,
        peer,
        auth,
        chunks: chunks.iter().map(|c| c.to_vec()).collect(),
    };
    format!(
        "{}--- config ({origin}.toml):\n{}",
        case.transcript(origin, &format!("{origin}.toml")).to_text(),
        config.to_toml()
    )
}

/// Decodes a `session` or `session_script` input into a [`Case`].
pub fn case(target: &str, data: &[u8]) -> Option<Case> {
    use arbitrary::{Arbitrary, Unstructured};
    match target {
        "session" => {
            let i = crate::SessionInput::decode(data)?;
            Some(Case {
                config: i.config,
                peer: i.peer(),
                auth: i.auth(),
                chunks: i.chunks().iter().map(|c| c.to_vec()).collect(),
            })
        }
        "session_script" => {
            let s = crate::Script::arbitrary_take_rest(Unstructured::new(data)).ok()?;
            let config = s.config.config();
            let chunks = s.chunks(&s.render(&config));
            Some(Case {
                config: s.config,
                peer: s.peer(),
                auth: s.auth(),
                chunks,
            })
        }
        _ => None,
    }
}
