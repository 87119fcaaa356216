//! The configuration as TOML, written beside a regression transcript.
//!
//! Written by hand, field by field, because core's `Config` has no
//! `Serialize`; to be replaced by serde on `Config` rather than grown.

use relayguard_core::config::Config;

/// The configuration as TOML, so that a regression transcript can name it.
pub fn config_toml(c: &Config) -> String {
    let list = |v: &[String]| {
        let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
        format!("[{}]", items.join(", "))
    };
    let own: Vec<String> = c.own_addresses.iter().map(|a| a.to_string()).collect();
    let mut t = format!(
        "hostname = {:?}\nown_addresses = {}\n\n[domains]\nlocal = {}\n",
        c.hostname,
        list(&own),
        list(&c.domains.local)
    );
    if let Some(m) = &c.domains.mailboxes {
        t.push_str(&format!("mailboxes = {}\n", list(m)));
    }
    t.push_str(&format!(
        "relay_to = {}\n\n[lan]\nnetworks = {}\n\n",
        list(&c.domains.relay_to),
        list(&c.lan.networks)
    ));
    t.push_str(&format!(
        "[relay]\nrequire_auth = {}\nnon_local_senders_in_lan = {}\npercent_hack = {}\n\n[auth]\nusers = [\n",
        c.relay.require_auth, c.relay.non_local_senders_in_lan, c.relay.percent_hack
    ));
    for u in &c.auth.users {
        t.push_str(&format!(
            "  {{ name = {:?}, password = {:?}, relay = {} }},\n",
            u.name, u.password, u.relay
        ));
    }
    t.push_str(&format!(
        "]\n\n[lists]\nblack = {}\n\n[limits]\ncommand_timeout_secs = {}\ndata_timeout_secs = {}\n",
        list(&c.lists.black),
        c.limits.command_timeout_secs,
        c.limits.data_timeout_secs
    ));
    t
}
