//! SMTP AUTH (RFC 4954) for the server session: PLAIN and LOGIN, with an
//! initial response or in steps. Kept apart from the command loop because it
//! has its own little state machine and its own failure replies.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{AuthStep, Session, State};
use crate::reply::Enhanced;

impl Session {
    pub(super) fn auth(&mut self, mechanism: &str, initial: Option<&str>) {
        if !self.policy.has_users() {
            return self.error(502, Enhanced(5, 5, 1), "Error: authentication not enabled");
        }
        if self.auth_needs_tls() {
            return self.error(
                538,
                Enhanced(5, 7, 11),
                "Encryption required for requested authentication mechanism",
            );
        }
        if !self.esmtp {
            return self.error(503, Enhanced(5, 5, 1), "Error: send EHLO first");
        }
        if self.user.is_some() {
            return self.error(503, Enhanced(5, 5, 1), "Error: already authenticated");
        }
        if self.auth_refused {
            return self.error(
                454,
                Enhanced(4, 7, 0),
                "Error: too many failed authentications, try again later",
            );
        }
        if self.tx.is_some() {
            return self.error(
                503,
                Enhanced(5, 5, 1),
                "Error: AUTH not allowed during a mail transaction",
            );
        }
        if mechanism.eq_ignore_ascii_case("PLAIN") {
            match initial {
                Some(i) => self.auth_plain(i.as_bytes()),
                None => {
                    self.state = State::Auth(AuthStep::Plain);
                    self.send(b"334 \r\n");
                }
            }
        } else if mechanism.eq_ignore_ascii_case("LOGIN") {
            match initial {
                Some(i) => self.auth_login_user(i.as_bytes()),
                None => {
                    self.state = State::Auth(AuthStep::LoginUser);
                    self.send(b"334 VXNlcm5hbWU6\r\n");
                }
            }
        } else {
            self.error(
                504,
                Enhanced(5, 5, 4),
                "Error: unsupported authentication mechanism",
            )
        }
    }

    pub(super) fn auth_response(&mut self, line: &[u8]) {
        let State::Auth(step) = std::mem::replace(&mut self.state, State::Command) else {
            return;
        };
        if line == b"*" {
            return self.error(501, Enhanced(5, 0, 0), "Authentication cancelled");
        }
        match step {
            AuthStep::Plain => self.auth_plain(line),
            AuthStep::LoginUser => self.auth_login_user(line),
            AuthStep::LoginPassword(user) => match decode(line) {
                Some(pw) => self.auth_check(&user, &String::from_utf8_lossy(&pw)),
                None => self.bad_base64(),
            },
        }
    }

    fn bad_base64(&mut self) {
        self.error(501, Enhanced(5, 5, 2), "Error: invalid base64 data")
    }

    fn auth_plain(&mut self, b64: &[u8]) {
        let Some(raw) = decode(b64) else {
            return self.bad_base64();
        };
        // authzid \0 authcid \0 password; an authzid other than the
        // authcid would let one user act as another, so it is refused.
        let mut parts = raw.split(|&b| b == 0);
        let (Some(authz), Some(authc), Some(pw), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return self.error(501, Enhanced(5, 5, 2), "Error: malformed PLAIN response");
        };
        if !authz.is_empty() && authz != authc {
            return self.auth_failed();
        }
        let user = String::from_utf8_lossy(authc).into_owned();
        let pw = String::from_utf8_lossy(pw).into_owned();
        self.auth_check(&user, &pw);
    }

    fn auth_login_user(&mut self, b64: &[u8]) {
        let Some(user) = decode(b64) else {
            return self.bad_base64();
        };
        self.state = State::Auth(AuthStep::LoginPassword(
            String::from_utf8_lossy(&user).into_owned(),
        ));
        self.send(b"334 UGFzc3dvcmQ6\r\n");
    }

    fn auth_check(&mut self, user: &str, password: &str) {
        if self.policy.check_password(user, password) {
            self.user = Some(user.to_string());
            self.reply(235, Enhanced(2, 7, 0), "Authentication successful");
        } else {
            self.auth_failed();
        }
    }

    fn auth_failed(&mut self) {
        self.error(
            535,
            Enhanced(5, 7, 8),
            "Error: authentication credentials invalid",
        );
        self.auth_failures += 1;
        self.auth_failures_unreported += 1;
        // The driver pauses before the next command is served.
        self.stopped = true;
    }
}

/// Base64 of a SASL response; `=` is the empty response (RFC 4954).
fn decode(b64: &[u8]) -> Option<Vec<u8>> {
    if b64 == b"=" {
        return Some(Vec::new());
    }
    BASE64.decode(b64).ok()
}
