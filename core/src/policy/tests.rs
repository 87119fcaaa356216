use super::*;

fn mailbox(s: &str) -> Mailbox {
    Mailbox::parse(s).unwrap()
}

/// Delivery asks a destination for the address it is sent to: none for a
/// local mailbox, the recipient for the others.
#[test]
fn only_destinations_that_leave_have_a_remote_mailbox() {
    let m = mailbox("bob@elsewhere.example");
    assert_eq!(
        Destination::Remote { mailbox: m.clone() }.remote_mailbox(),
        Some(&m)
    );
    assert_eq!(
        Destination::RelayTo { mailbox: m.clone() }.remote_mailbox(),
        Some(&m)
    );
    let local = Destination::Local {
        mailbox: "alice@example.com".into(),
    };
    assert_eq!(local.remote_mailbox(), None);
}

/// `explain` and the logs print destinations and reasons as these texts.
#[test]
fn destinations_and_reasons_read_as_text() {
    let m = mailbox("bob@elsewhere.example");
    let local = Destination::Local {
        mailbox: "alice@example.com".into(),
    };
    assert_eq!(local.to_string(), "local mailbox alice@example.com");
    assert_eq!(
        Destination::Remote { mailbox: m.clone() }.to_string(),
        "remote bob@elsewhere.example"
    );
    assert_eq!(
        Destination::RelayTo { mailbox: m }.to_string(),
        "relay to bob@elsewhere.example (backup MX)"
    );
    assert_eq!(Reason::Allowed.to_string(), "allowed");
    assert_eq!(
        Reason::BlackListedClient.to_string(),
        "client address is on the black list"
    );
}
