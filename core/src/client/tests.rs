use super::*;
use proptest::prelude::*;

const T0: Now = Duration::from_secs(100);
const TIMEOUT: Duration = Duration::from_secs(30);
const BODY: &str = "Subject: hi\r\n\r\nhello\r\n";

fn job(rcpts: &[&str]) -> Job {
    Job {
        helo: "client.example".into(),
        auth: None,
        mail_from: "alice@client.example".into(),
        rcpt_to: rcpts.iter().map(|r| r.to_string()).collect(),
        body: BODY.as_bytes().to_vec(),
        timeout: TIMEOUT,
        tls: TlsMode::Opportunistic,
    }
}

fn reply(text: &str) -> Reply {
    let mut r = ReplyReader::new();
    r.push(text.as_bytes());
    r.next_reply().unwrap().unwrap()
}

/// A client and what it has put out so far.
struct Run {
    client: Client,
    sends: Vec<Vec<u8>>,
    outcome: Option<Outcome>,
}

impl Run {
    fn new(job: Job) -> Run {
        Run {
            client: Client::new(job, T0),
            sends: Vec::new(),
            outcome: None,
        }
    }

    /// Collects new outputs, checking that nothing follows Done; returns
    /// the bytes sent.
    fn drain(&mut self) -> Vec<u8> {
        let mut wire = Vec::new();
        while let Some(o) = self.client.poll_output() {
            assert!(self.outcome.is_none(), "output after Done: {o:?}");
            match o {
                Output::Send(b) => {
                    wire.extend_from_slice(&b);
                    self.sends.push(b);
                }
                Output::Done(x) => self.outcome = Some(x),
                Output::StartTls => self.sends.push(b"<STARTTLS>".to_vec()),
            }
        }
        wire
    }

    fn outcome(&self) -> &Outcome {
        self.outcome.as_ref().expect("session not done")
    }

    fn sent(&self) -> Vec<String> {
        self.sends
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }
}

/// Plays a server that greets with `greeting`, then expects each command of
/// `script` in order and gives its reply only once the client has sent it.
fn converse(job: Job, greeting: &str, script: &[(&str, &str)]) -> Run {
    let mut run = Run::new(job);
    run.client.handle_input(T0, greeting.as_bytes());
    let mut wire = run.drain();
    for (cmd, answer) in script {
        assert!(
            wire.starts_with(cmd.as_bytes()),
            "expected {cmd:?}, client sent {:?}",
            String::from_utf8_lossy(&wire)
        );
        wire.drain(..cmd.len());
        run.client.handle_input(T0, answer.as_bytes());
        wire.extend(run.drain());
    }
    assert!(
        wire.is_empty(),
        "client sent more: {:?}",
        String::from_utf8_lossy(&wire)
    );
    run
}

fn commands(script: &[(&str, &str)]) -> Vec<String> {
    script.iter().map(|(c, _)| c.to_string()).collect()
}

const GREETING: &str = "220 mx.example ESMTP\r\n";
const EHLO: &str = "EHLO client.example\r\n";
const MAIL: &str = "MAIL FROM:<alice@client.example>\r\n";
const BOB: &str = "RCPT TO:<bob@mx.example>\r\n";
const CAROL: &str = "RCPT TO:<carol@mx.example>\r\n";
const WIRE_BODY: &str = "Subject: hi\r\n\r\nhello\r\n.\r\n";
const QUIT: (&str, &str) = ("QUIT\r\n", "221 2.0.0 bye\r\n");

#[test]
fn delivers_one_command_at_a_time_without_pipelining() {
    let script = [
        (EHLO, "250-mx.example\r\n250 8BITMIME\r\n"),
        (MAIL, "250 2.1.0 ok\r\n"),
        (BOB, "250 2.1.5 ok\r\n"),
        (CAROL, "251 2.1.5 forwarded\r\n"),
        ("DATA\r\n", "354 go ahead\r\n"),
        (WIRE_BODY, "250 2.0.0 queued\r\n"),
        QUIT,
    ];
    let run = converse(job(&["bob@mx.example", "carol@mx.example"]), GREETING, &script);
    assert_eq!(run.sent(), commands(&script));
    let o = run.outcome();
    assert_eq!(o.greeting, Some(reply(GREETING)));
    assert_eq!(o.message, MessageResult::Accepted(reply("250 2.0.0 queued\r\n")));
    assert_eq!(
        o.recipients,
        vec![
            (
                "bob@mx.example".into(),
                RcptResult::Accepted(reply("250 2.1.5 ok\r\n"))
            ),
            (
                "carol@mx.example".into(),
                RcptResult::Accepted(reply("251 2.1.5 forwarded\r\n"))
            ),
        ]
    );
    let expected: Vec<(Vec<u8>, Reply)> = script
        .iter()
        .map(|(c, r)| (c.as_bytes().to_vec(), reply(r)))
        .collect();
    assert_eq!(o.transcript, expected);
    assert!(run.client.is_done());
    assert_eq!(run.client.poll_timeout(), None);
}

#[test]
fn pipelines_mail_and_every_rcpt_in_one_write_but_not_data() {
    let mail = "MAIL FROM:<alice@client.example> SIZE=22\r\n";
    let script = [
        (EHLO, "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n"),
        (mail, "250 2.1.0 ok\r\n"),
        (BOB, "250 2.1.5 ok\r\n"),
        (CAROL, "250 2.1.5 ok\r\n"),
        ("DATA\r\n", "354 go ahead\r\n"),
        (WIRE_BODY, "250 2.0.0 queued\r\n"),
        QUIT,
    ];
    let run = converse(job(&["bob@mx.example", "carol@mx.example"]), GREETING, &script);
    assert_eq!(
        run.sent(),
        [
            EHLO.to_string(),
            format!("{mail}{BOB}{CAROL}"),
            "DATA\r\n".into(),
            WIRE_BODY.into(),
            "QUIT\r\n".into()
        ]
    );
    assert!(matches!(run.outcome().message, MessageResult::Accepted(_)));
    assert_eq!(run.outcome().transcript.len(), 7);
    assert_eq!(run.outcome().transcript[2].0, BOB.as_bytes());
}

#[test]
fn falls_back_to_helo_when_ehlo_gets_5xx() {
    let script = [
        (EHLO, "502 5.5.2 what is EHLO\r\n"),
        ("HELO client.example\r\n", "250 mx.example\r\n"),
        (MAIL, "250 ok\r\n"),
        (BOB, "250 ok\r\n"),
        ("DATA\r\n", "354 go ahead\r\n"),
        (WIRE_BODY, "250 queued\r\n"),
        QUIT,
    ];
    let run = converse(job(&["bob@mx.example"]), GREETING, &script);
    assert_eq!(run.sent(), commands(&script));
    assert_eq!(run.client.extensions(), &Extensions::default());
    assert!(matches!(run.outcome().message, MessageResult::Accepted(_)));
}

#[test]
fn ehlo_4xx_is_not_a_reason_to_try_helo() {
    let script = [(EHLO, "421 4.3.2 busy\r\n"), QUIT];
    let run = converse(job(&["bob@mx.example"]), GREETING, &script);
    assert_eq!(
        run.outcome().message,
        MessageResult::NotSent(Failure::HelloRefused(reply("421 4.3.2 busy\r\n")))
    );
}

#[test]
fn helo_refused_ends_the_session() {
    let script = [
        (EHLO, "500 no\r\n"),
        ("HELO client.example\r\n", "550 5.7.1 go away\r\n"),
        QUIT,
    ];
    let run = converse(job(&["bob@mx.example"]), GREETING, &script);
    assert_eq!(
        run.outcome().message,
        MessageResult::NotSent(Failure::HelloRefused(reply("550 5.7.1 go away\r\n")))
    );
    assert_eq!(run.outcome().recipients[0].1, RcptResult::NotTried);
}

fn with_auth(mut job: Job) -> Job {
    job.auth = Some(("carol".into(), "secret".into()));
    job
}

const AUTH: &str = "AUTH PLAIN AGNhcm9sAHNlY3JldA==\r\n";

#[test]
fn authenticates_with_plain_and_an_initial_response() {
    let script = [
        (
            EHLO,
            "250-mx.example\r\n250-AUTH LOGIN PLAIN\r\n250 PIPELINING\r\n",
        ),
        (AUTH, "235 2.7.0 ok\r\n"),
        (MAIL, "250 ok\r\n"),
        (BOB, "250 ok\r\n"),
        ("DATA\r\n", "354 go ahead\r\n"),
        (WIRE_BODY, "250 queued\r\n"),
        QUIT,
    ];
    let run = converse(with_auth(job(&["bob@mx.example"])), GREETING, &script);
    assert_eq!(run.sent()[1], AUTH);
    assert_eq!(run.sent()[2], format!("{MAIL}{BOB}"));
    assert!(matches!(run.outcome().message, MessageResult::Accepted(_)));
}

#[test]
fn auth_535_ends_the_session_before_mail() {
    let script = [
        (EHLO, "250-mx.example\r\n250 AUTH PLAIN\r\n"),
        (AUTH, "535 5.7.8 bad credentials\r\n"),
        QUIT,
    ];
    let run = converse(with_auth(job(&["bob@mx.example"])), GREETING, &script);
    assert_eq!(run.sent(), commands(&script));
    assert_eq!(
        run.outcome().message,
        MessageResult::NotSent(Failure::AuthRefused(reply("535 5.7.8 bad credentials\r\n")))
    );
    assert_eq!(run.outcome().recipients[0].1, RcptResult::NotTried);
}

#[test]
fn never_sends_unauthenticated_when_the_job_has_credentials() {
    let script = [(EHLO, "250-mx.example\r\n250 AUTH LOGIN CRAM-MD5\r\n"), QUIT];
    let run = converse(with_auth(job(&["bob@mx.example"])), GREETING, &script);
    assert_eq!(
        run.outcome().message,
        MessageResult::NotSent(Failure::AuthNotOffered)
    );
    let script = [
        (EHLO, "502 no\r\n"),
        ("HELO client.example\r\n", "250 mx\r\n"),
        QUIT,
    ];
    let run = converse(with_auth(job(&["bob@mx.example"])), GREETING, &script);
    assert_eq!(
        run.outcome().message,
        MessageResult::NotSent(Failure::AuthNotOffered)
    );
}

#[test]
fn one_recipient_refused_and_one_accepted_still_sends() {
    let script = [
        (EHLO, "250-mx.example\r\n250 PIPELINING\r\n"),
        (MAIL, "250 ok\r\n"),
        (BOB, "550 5.7.1 relay denied\r\n"),
        (CAROL, "250 ok\r\n"),
        ("DATA\r\n", "354 go ahead\r\n"),
        (WIRE_BODY, "250 queued\r\n"),
        QUIT,
    ];
    let run = converse(job(&["bob@mx.example", "carol@mx.example"]), GREETING, &script);
    let o = run.outcome();
    assert_eq!(
        o.recipients[0].1,
        RcptResult::Permanent(reply("550 5.7.1 relay denied\r\n"))
    );
    assert_eq!(o.recipients[1].1, RcptResult::Accepted(reply("250 ok\r\n")));
    assert_eq!(o.message, MessageResult::Accepted(reply("250 queued\r\n")));
}

#[test]
fn all_recipients_refused_means_no_data() {
    let script = [
        (EHLO, "250 mx.example\r\n"),
        (MAIL, "250 ok\r\n"),
        (BOB, "550 5.7.1 relay denied\r\n"),
        (CAROL, "550 5.7.1 relay denied\r\n"),
        QUIT,
    ];
    let run = converse(job(&["bob@mx.example", "carol@mx.example"]), GREETING, &script);
    assert_eq!(run.sent(), commands(&script));
    assert_eq!(
        run.outcome().message,
        MessageResult::NotSent(Failure::NoRecipientAccepted)
    );
}

#[test]
fn transient_and_permanent_recipient_refusals_are_kept_apart() {
    let script = [
        (EHLO, "250-mx.example\r\n250 PIPELINING\r\n"),
        (MAIL, "250 ok\r\n"),
        (BOB, "452 4.5.3 too many recipients\r\n"),
        (CAROL, "550 5.1.1 no such user\r\n"),
        QUIT,
    ];
    let run = converse(job(&["bob@mx.example", "carol@mx.example"]), GREETING, &script);
    let o = run.outcome();
    assert_eq!(
        o.recipients[0].1,
        RcptResult::Transient(reply("452 4.5.3 too many recipients\r\n"))
    );
    assert_eq!(
        o.recipients[1].1,
        RcptResult::Permanent(reply("550 5.1.1 no such user\r\n"))
    );
    assert_eq!(o.message, MessageResult::NotSent(Failure::NoRecipientAccepted));
}

#[test]
fn mail_refused_stops_before_any_rcpt() {
    let script = [
        (EHLO, "250 mx.example\r\n"),
        (MAIL, "451 4.3.0 try later\r\n"),
        QUIT,
    ];
    let run = converse(job(&["bob@mx.example"]), GREETING, &script);
    assert_eq!(run.sent(), commands(&script));
    assert_eq!(
        run.outcome().message,
        MessageResult::NotSent(Failure::MailRefused(reply("451 4.3.0 try later\r\n")))
    );
    assert_eq!(run.outcome().recipients[0].1, RcptResult::NotTried);
}

#[test]
fn pipelined_mail_refused_means_no_data_even_if_a_rcpt_got_250() {
    let script = [
        (EHLO, "250-mx.example\r\n250 PIPELINING\r\n"),
        (MAIL, "550 5.1.8 bad sender\r\n"),
        (BOB, "250 ok\r\n"),
        QUIT,
    ];
    let run = converse(job(&["bob@mx.example"]), GREETING, &script);
    assert_eq!(
        run.outcome().message,
        MessageResult::NotSent(Failure::MailRefused(reply("550 5.1.8 bad sender\r\n")))
    );
    assert_eq!(run.sent().last().unwrap(), "QUIT\r\n");
    assert!(!run.sent().iter().any(|s| s.contains("DATA")));
}

fn up_to_data(data_reply: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        (EHLO, "250 mx.example\r\n"),
        (MAIL, "250 ok\r\n"),
        (BOB, "250 ok\r\n"),
        ("DATA\r\n", data_reply),
    ]
}

#[test]
fn body_refused_with_451_is_transient() {
    let mut script = up_to_data("354 go ahead\r\n");
    script.extend([(WIRE_BODY, "451 4.3.0 disk full\r\n"), QUIT]);
    let run = converse(job(&["bob@mx.example"]), GREETING, &script);
    assert_eq!(
        run.outcome().message,
        MessageResult::Transient(reply("451 4.3.0 disk full\r\n"))
    );
}

#[test]
fn data_refused_means_no_body() {
    let mut script = up_to_data("554 5.5.1 no valid recipients\r\n");
    script.push(QUIT);
    let run = converse(job(&["bob@mx.example"]), GREETING, &script);
    assert_eq!(run.sent(), commands(&script));
    assert_eq!(
        run.outcome().message,
        MessageResult::Permanent(reply("554 5.5.1 no valid recipients\r\n"))
    );
}

#[test]
fn the_body_waits_for_354_exactly() {
    let mut script = up_to_data("250 2.0.0 ok, I guess\r\n");
    script.push(QUIT);
    let run = converse(job(&["bob@mx.example"]), GREETING, &script);
    assert_eq!(run.sent(), commands(&script));
    assert_eq!(
        run.outcome().message,
        MessageResult::Permanent(reply("250 2.0.0 ok, I guess\r\n"))
    );
}

#[test]
fn greeting_554_quits_at_once() {
    let run = converse(job(&["bob@mx.example"]), "554 5.3.2 not now\r\n", &[QUIT]);
    let o = run.outcome();
    assert_eq!(o.greeting, Some(reply("554 5.3.2 not now\r\n")));
    assert_eq!(
        o.message,
        MessageResult::NotSent(Failure::GreetingRefused(reply("554 5.3.2 not now\r\n")))
    );
    assert_eq!(
        o.transcript,
        vec![(b"QUIT\r\n".to_vec(), reply("221 2.0.0 bye\r\n"))]
    );
}

#[test]
fn malformed_reply_ends_the_session_without_quit() {
    let script = [(EHLO, "250 mx.example\r\n"), (MAIL, "2x0 what\r\n")];
    let run = converse(job(&["bob@mx.example"]), GREETING, &script);
    assert_eq!(run.sent(), commands(&script));
    assert_eq!(
        run.outcome().message,
        MessageResult::NotSent(Failure::Protocol {
            line: b"2x0 what\r\n".to_vec(),
            error: LineError::BadCode
        })
    );
    assert_eq!(run.outcome().transcript.len(), 1);
}

#[test]
fn malformed_lines_are_reported_with_the_line() {
    let cases: [(&str, &[u8], LineError); 3] = [
        ("250 ok\n", b"250 ok\n", LineError::NoCrlf),
        (
            "250-a\r\n251 b\r\n",
            b"251 b\r\n",
            LineError::CodeChanged {
                first: 250,
                then: 251,
            },
        ),
        ("250 a\rb\r\n", b"250 a\rb\r\n", LineError::ControlCharacter),
    ];
    for (answer, line, error) in cases {
        let run = converse(job(&["bob@mx.example"]), GREETING, &[(EHLO, answer)]);
        let expected = Failure::Protocol {
            line: line.to_vec(),
            error,
        };
        assert_eq!(
            run.outcome().message,
            MessageResult::NotSent(expected),
            "{answer:?}"
        );
    }
}

#[test]
fn a_line_too_long_fails_the_same_however_it_is_split() {
    let long = format!("220 {}\r\n", "a".repeat(600));
    let mut whole = Run::new(job(&["bob@mx.example"]));
    whole.client.handle_input(T0, long.as_bytes());
    whole.drain();
    let mut bytewise = Run::new(job(&["bob@mx.example"]));
    for b in long.as_bytes() {
        bytewise.client.handle_input(T0, &[*b]);
    }
    bytewise.drain();
    let expected = Failure::Protocol {
        line: long.as_bytes()[..MAX_REPLY_LINE].to_vec(),
        error: LineError::TooLong(MAX_REPLY_LINE + 1),
    };
    assert_eq!(whole.outcome().message, MessageResult::NotSent(expected));
    assert_eq!(whole.outcome, bytewise.outcome);
    assert!(whole.sends.is_empty());
}

#[test]
fn a_reply_line_of_exactly_512_octets_is_fine() {
    let greeting = format!("220 {}\r\n", "a".repeat(MAX_REPLY_LINE - 6));
    assert_eq!(greeting.len(), MAX_REPLY_LINE);
    let mut run = converse(job(&["bob@mx.example"]), &greeting, &[(EHLO, "")]);
    run.client.handle_close(T0);
    run.drain();
    assert_eq!(
        run.outcome().greeting.as_ref().map(|g| g.lines[0].len()),
        Some(MAX_REPLY_LINE - 6)
    );
    assert_eq!(run.outcome().message, MessageResult::NotSent(Failure::Closed));
}

#[test]
fn times_out_per_reply_awaited() {
    let mut run = Run::new(job(&["bob@mx.example"]));
    assert_eq!(run.client.poll_timeout(), Some(T0 + TIMEOUT));
    run.client.handle_timeout(T0 + TIMEOUT - Duration::from_nanos(1));
    assert!(!run.client.is_done());
    // A whole reply restarts the clock; part of one does not.
    let t1 = T0 + Duration::from_secs(10);
    run.client.handle_input(t1, GREETING.as_bytes());
    run.client
        .handle_input(t1 + Duration::from_secs(5), b"250-mx.example\r\n");
    assert_eq!(run.client.poll_timeout(), Some(t1 + TIMEOUT));
    run.client.handle_timeout(T0 + TIMEOUT);
    assert!(!run.client.is_done());
    run.client.handle_timeout(t1 + TIMEOUT);
    run.drain();
    assert_eq!(run.sent(), [EHLO]);
    assert_eq!(run.outcome().message, MessageResult::NotSent(Failure::Timeout));
    assert_eq!(run.client.poll_timeout(), None);
}

#[test]
fn an_unanswered_quit_keeps_the_result() {
    let mut script = up_to_data("354 go ahead\r\n");
    script.extend([(WIRE_BODY, "250 queued\r\n"), ("QUIT\r\n", "")]);
    let mut run = converse(job(&["bob@mx.example"]), GREETING, &script);
    assert!(run.outcome.is_none());
    run.client.handle_timeout(T0 + TIMEOUT);
    run.drain();
    assert_eq!(
        run.outcome().message,
        MessageResult::Accepted(reply("250 queued\r\n"))
    );
    assert_eq!(run.outcome().transcript.len(), 5);
}

#[test]
fn close_mid_data_leaves_the_message_not_sent() {
    let mut script = up_to_data("354 go ahead\r\n");
    script.push((WIRE_BODY, "25"));
    let mut run = converse(job(&["bob@mx.example"]), GREETING, &script);
    run.client.handle_close(T0);
    run.drain();
    let o = run.outcome();
    assert_eq!(o.message, MessageResult::NotSent(Failure::Closed));
    assert!(matches!(o.recipients[0].1, RcptResult::Accepted(_)));
    assert_eq!(o.transcript.last().unwrap().0, b"DATA\r\n");
    assert_eq!(run.sent().last().unwrap(), WIRE_BODY);
    run.client.handle_input(T0, b"250 ok\r\n");
    assert_eq!(run.client.poll_output(), None);
}

#[test]
fn close_after_quit_is_the_normal_end() {
    let mut script = up_to_data("354 go ahead\r\n");
    script.extend([(WIRE_BODY, "250 queued\r\n"), ("QUIT\r\n", "")]);
    let mut run = converse(job(&["bob@mx.example"]), GREETING, &script);
    run.client.handle_close(T0);
    run.drain();
    assert_eq!(
        run.outcome().message,
        MessageResult::Accepted(reply("250 queued\r\n"))
    );
}

/// The whole of a multi-line session as the server sends it.
const SERVER: &str = concat!(
    "220-mx.example ESMTP\r\n220 no UCE\r\n",
    "250-mx.example greets you\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE\r\n",
    "250 2.1.0 ok\r\n",
    "250 2.1.5 ok\r\n",
    "354 go ahead\r\n",
    "250-2.0.0 queued\r\n250 2.0.0 as 12345\r\n",
    "221 2.0.0 bye\r\n",
);

fn feed(job: Job, chunks: &[&[u8]]) -> Vec<Output> {
    let mut c = Client::new(job, T0);
    let mut out = Vec::new();
    for chunk in chunks {
        c.handle_input(T0, chunk);
        out.extend(std::iter::from_fn(|| c.poll_output()));
    }
    c.handle_close(T0);
    out.extend(std::iter::from_fn(|| c.poll_output()));
    out
}

#[test]
fn multi_line_replies_split_at_every_byte() {
    let bytes = SERVER.as_bytes();
    let whole = feed(job(&["bob@mx.example"]), &[bytes]);
    let Some(Output::Done(o)) = whole.last() else {
        panic!("no Done: {whole:?}")
    };
    assert_eq!(o.greeting.as_ref().unwrap().lines, ["mx.example ESMTP", "no UCE"]);
    assert_eq!(
        o.message,
        MessageResult::Accepted(reply("250-2.0.0 queued\r\n250 2.0.0 as 12345\r\n"))
    );
    assert_eq!(o.transcript.len(), 6);
    for i in 0..=bytes.len() {
        assert_eq!(
            feed(job(&["bob@mx.example"]), &[&bytes[..i], &bytes[i..]]),
            whole,
            "split at {i}"
        );
    }
    let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(feed(job(&["bob@mx.example"]), &bytewise), whole);
}

#[test]
fn adds_size_8bitmime_and_smtputf8_when_offered_and_needed() {
    let mut j = job(&["josé@mx.example"]);
    j.body = "café\r\n".into();
    let script = [
        (
            EHLO,
            "250-mx.example\r\n250-size 1000\r\n250-8bitmime\r\n250 SMTPUTF8\r\n",
        ),
        (
            "MAIL FROM:<alice@client.example> SIZE=7 BODY=8BITMIME SMTPUTF8\r\n",
            "250 ok\r\n",
        ),
        ("RCPT TO:<josé@mx.example>\r\n", "250 ok\r\n"),
        ("DATA\r\n", "354 go ahead\r\n"),
        ("café\r\n.\r\n", "250 queued\r\n"),
        QUIT,
    ];
    let run = converse(j, GREETING, &script);
    assert!(matches!(run.outcome().message, MessageResult::Accepted(_)));
}

#[test]
fn reads_ehlo_keywords() {
    let ext = Extensions::from_ehlo(&reply(
        "250-mx.example\r\n250-pipelining\r\n250-AUTH=login PLAIN\r\n250-starttls\r\n250-SIZE 35882577\r\n250 auth cram-md5\r\n",
    ));
    assert_eq!(
        ext,
        Extensions {
            pipelining: true,
            size: Some(35882577),
            eight_bit_mime: false,
            smtputf8: false,
            auth: vec!["LOGIN".into(), "PLAIN".into(), "CRAM-MD5".into()],
            starttls: true,
        }
    );
    // The first line is the server's name, never a keyword.
    assert_eq!(
        Extensions::from_ehlo(&reply("250 PIPELINING\r\n")),
        Extensions::default()
    );
}

#[test]
fn a_job_with_a_line_break_in_a_command_sends_nothing() {
    let mut run = Run::new(job(&["bob@mx.example>\r\nRCPT TO:<victim@far.example"]));
    run.drain();
    assert!(run.sends.is_empty());
    assert_eq!(
        run.outcome().message,
        MessageResult::NotSent(Failure::InvalidJob("line break in rcpt_to"))
    );
    run.client.handle_input(T0, GREETING.as_bytes());
    assert_eq!(run.client.poll_output(), None);
}

#[test]
fn data_bytes_stuffs_dots_and_never_lets_a_bare_line_ending_through() {
    assert_eq!(data_bytes(b""), b".\r\n");
    assert_eq!(data_bytes(b"a"), b"a\r\n.\r\n");
    assert_eq!(data_bytes(b".\r\n"), b"..\r\n.\r\n");
    assert_eq!(
        data_bytes(b"a\rb\nc\r\n.d\r\n..e"),
        b"a\r\nb\r\nc\r\n..d\r\n...e\r\n.\r\n"
    );
    assert_eq!(data_bytes(b"a\r\r\nb\n\n"), b"a\r\n\r\nb\r\n\r\n.\r\n");
    // SMTP smuggling: a bare-LF end of data must not end the message.
    assert_eq!(
        data_bytes(b"x\n.\r\nMAIL FROM:<evil@example>\r\n"),
        b"x\r\n..\r\nMAIL FROM:<evil@example>\r\n.\r\n"
    );
    assert_eq!(data_bytes(b"x\r\n.\rMAIL"), b"x\r\n..\r\nMAIL\r\n.\r\n");
}

// ---- properties ----

/// A server reply, whole or a piece that joins with the next into an odd
/// line.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "220 mx\r\n",
        "220-mx\r\n220 hi\r\n",
        "250 ok\r\n",
        "250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n",
        "250-mx\r\n250 SIZE 100\r\n",
        "235 2.7.0 ok\r\n",
        "354 go\r\n",
        "421 4.3.2 bye\r\n",
        "452 4.5.3 later\r\n",
        "550 5.1.1 no\r\n",
        "502 no\r\n",
        "221 bye\r\n",
        "535 5.7.8 no\r\n",
        "25",
        "0 x\r\n",
        "\r\n",
        "250 ok\n",
        "999 x\r\n",
    ])
}

fn any_job() -> impl Strategy<Value = Job> {
    (0..4usize, any::<bool>()).prop_map(|(n, auth)| {
        let rcpts: Vec<String> = (0..n).map(|i| format!("r{i}@mx.example")).collect();
        let mut j = job(&rcpts.iter().map(String::as_str).collect::<Vec<_>>());
        if auth {
            j = with_auth(j);
        }
        j
    })
}

/// A job and what a server might answer: either the replies of a
/// successful delivery with a few replaced or inserted (so that most runs
/// get deep into the session), or any sequence of pieces.
fn conversation() -> impl Strategy<Value = (Job, Vec<u8>)> {
    let edited = (
        any_job(),
        prop::sample::select(vec![
            "250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n",
            "250-mx\r\n250 AUTH PLAIN\r\n",
        ]),
        prop::collection::vec((any::<prop::sample::Index>(), any::<bool>(), piece()), 0..4),
    )
        .prop_map(|(job, ehlo, edits)| {
            let mut replies = vec!["220 mx\r\n", ehlo];
            if job.auth.is_some() {
                replies.push("235 2.7.0 ok\r\n");
            }
            replies.push("250 ok\r\n");
            replies.extend(job.rcpt_to.iter().map(|_| "250 ok\r\n"));
            replies.extend(["354 go\r\n", "250 queued\r\n", "221 bye\r\n"]);
            for (at, replace, p) in edits {
                let i = at.index(replies.len());
                if replace {
                    replies[i] = p;
                } else {
                    replies.insert(i, p);
                }
            }
            (job, replies.concat().into_bytes())
        });
    let random =
        (any_job(), prop::collection::vec(piece(), 0..16)).prop_map(|(j, p)| (j, p.concat().into_bytes()));
    prop_oneof![3 => edited, 1 => random]
}

fn split_at<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

fn exactly_one_done_last(out: &[Output]) -> bool {
    let dones = out.iter().filter(|o| matches!(o, Output::Done(_))).count();
    dones == 1 && matches!(out.last(), Some(Output::Done(_)))
}

/// Undoes dot-stuffing: the message, or None if `data` is not lines
/// ended by CRLF with a lone `.` line at the end and nowhere else.
fn unstuff(data: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let mut rest = data;
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        let (line, after) = (&rest[..end], &rest[end + 2..]);
        if line == b"." {
            return after.is_empty().then_some(body);
        }
        body.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        body.extend_from_slice(b"\r\n");
        rest = after;
    }
}

fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// The body as the job means it, worked out differently from
/// `data_bytes`: CRLF, lone CR and lone LF each end one line.
fn normalized(body: &[u8]) -> Vec<u8> {
    let lf = replace(&replace(body, b"\r\n", b"\n"), b"\r", b"\n");
    let mut out = replace(&lf, b"\n", b"\r\n");
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

proptest! {
    #[test]
    fn any_split_gives_the_same_outputs(
        (job, bytes) in conversation(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let whole = feed(job.clone(), &[&bytes]);
        prop_assert_eq!(feed(job, &split_at(&bytes, &cuts)), whole);
    }

    #[test]
    fn any_server_bytes_end_in_exactly_one_done(
        (job, bytes) in prop_oneof![
            conversation(),
            (any_job(), prop::collection::vec(any::<u8>(), 0..1200)),
        ],
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        late in any::<bool>(),
    ) {
        let mut c = Client::new(job, T0);
        let mut out = Vec::new();
        for chunk in split_at(&bytes, &cuts) {
            c.handle_input(T0, chunk);
            out.extend(std::iter::from_fn(|| c.poll_output()));
        }
        if late {
            c.handle_timeout(T0 + TIMEOUT);
        } else {
            c.handle_close(T0);
        }
        out.extend(std::iter::from_fn(|| c.poll_output()));
        prop_assert!(exactly_one_done_last(&out), "{:?}", out);
        prop_assert!(c.is_done());
        c.handle_input(T0, b"250 ok\r\n");
        c.handle_timeout(T0 + TIMEOUT * 2);
        c.handle_close(T0);
        prop_assert_eq!(c.poll_output(), None);
    }

    #[test]
    fn data_never_carries_a_bare_cr_or_lf(
        body in prop::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), any::<u8>()],
            0..200,
        ),
    ) {
        let mut j = job(&["bob@mx.example"]);
        j.body = body.clone();
        let mut run = Run::new(j);
        run.client.handle_input(T0, b"220 mx\r\n250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n");
        run.drain();
        prop_assert_eq!(run.sends.len(), 5);
        prop_assert_eq!(&run.sends[3], b"DATA\r\n");
        let data = &run.sends[4];
        for (i, &b) in data.iter().enumerate() {
            prop_assert!(b != b'\r' || data.get(i + 1) == Some(&b'\n'), "bare CR at {} in {:?}", i, data);
            prop_assert!(b != b'\n' || (i > 0 && data[i - 1] == b'\r'), "bare LF at {} in {:?}", i, data);
        }
        prop_assert_eq!(unstuff(data), Some(normalized(&body)));
    }
}

/// A client whose driver can do TLS, after the greeting and an EHLO reply
/// that offers STARTTLS: it has just sent `STARTTLS`.
fn at_starttls(mode: TlsMode) -> Run {
    let mut j = job(&["bob@mx.example"]);
    j.tls = mode;
    let mut run = Run::new(j);
    run.client.enable_tls();
    run.client.handle_input(T0, GREETING.as_bytes());
    assert_eq!(run.drain(), EHLO.as_bytes());
    run.client
        .handle_input(T0, b"250-mx.example\r\n250-STARTTLS\r\n250 PIPELINING\r\n");
    assert_eq!(run.drain(), b"STARTTLS\r\n");
    run
}

#[test]
fn starttls_then_ehlo_again_and_the_plain_text_extensions_forgotten() {
    let mut run = at_starttls(TlsMode::Required);
    run.client.handle_input(T0, b"220 2.0.0 go ahead\r\n");
    assert!(run.drain().is_empty());
    assert_eq!(run.sends.last().unwrap(), b"<STARTTLS>");
    assert!(run.client.extensions().pipelining);
    run.client.tls_established(T0);
    assert!(run.client.is_tls());
    assert_eq!(run.client.extensions(), &Extensions::default());
    assert_eq!(run.drain(), EHLO.as_bytes());
    // Over TLS the server no longer offers STARTTLS, and the client does
    // not ask again: on to MAIL, one command at a time now.
    run.client.handle_input(T0, b"250 mx.example\r\n");
    assert_eq!(run.drain(), MAIL.as_bytes());
}

/// Exim's CVE-2021-38371 from the client's side: a reply pipelined after
/// the 220 in plain text, in the same read or a later one before the
/// handshake, is never read; the delivery fails as a protocol error, no
/// handshake is asked for, and nothing more is sent.
#[test]
fn replies_after_the_220_and_before_the_handshake_fail_the_delivery() {
    let injected = "250-mx.example\r\n250 AUTH PLAIN\r\n";
    for split in [None, Some(0), Some(3)] {
        let mut run = at_starttls(TlsMode::Opportunistic);
        let reply = format!("220 2.0.0 go ahead\r\n{injected}");
        let at = 20 + split.unwrap_or(0);
        match split {
            None => run.client.handle_input(T0, reply.as_bytes()),
            Some(_) => {
                run.client.handle_input(T0, &reply.as_bytes()[..at]);
                run.client.handle_input(T0, &reply.as_bytes()[at..]);
            }
        }
        let wire = run.drain();
        assert!(wire.is_empty(), "{:?}", String::from_utf8_lossy(&wire));
        // Injected octets in the 220's own read are counted there and
        // then; after a 220 that came alone, those of the next read.
        let octets = match split {
            Some(n) if n > 0 => n,
            _ => injected.len(),
        };
        let expected = MessageResult::NotSent(Failure::ReplyInjection { octets });
        assert_eq!(run.outcome().message, expected, "split {split:?}");
        // The handshake was asked for only when the 220 came alone.
        let asked = run.sends.iter().any(|s| s == b"<STARTTLS>");
        assert_eq!(asked, split == Some(0), "split {split:?}");
        run.client.tls_established(T0);
        assert!(!run.client.is_tls());
    }
}

#[test]
fn a_refused_starttls_goes_on_in_plain_text_unless_tls_is_required() {
    let mut run = at_starttls(TlsMode::Opportunistic);
    run.client.handle_input(T0, b"454 4.7.0 TLS not available\r\n");
    assert_eq!(run.drain(), format!("{MAIL}{BOB}").as_bytes());

    let mut run = at_starttls(TlsMode::Required);
    run.client.handle_input(T0, b"454 4.7.0 TLS not available\r\n");
    assert_eq!(run.drain(), b"QUIT\r\n");
    run.client.handle_input(T0, QUIT.1.as_bytes());
    run.drain();
    let MessageResult::NotSent(Failure::TlsUnavailable(why)) = &run.outcome().message else {
        panic!("{:?}", run.outcome().message)
    };
    assert!(why.contains("454"), "{why}");
}

#[test]
fn required_tls_on_a_driver_without_tls_fails_before_mail() {
    let mut j = job(&["bob@mx.example"]);
    j.tls = TlsMode::Required;
    let script = [(EHLO, "250-mx.example\r\n250 STARTTLS\r\n"), QUIT];
    let run = converse(j, GREETING, &script);
    assert_eq!(
        run.outcome().message,
        MessageResult::NotSent(Failure::TlsUnavailable("this connection cannot do TLS".into()))
    );
}
