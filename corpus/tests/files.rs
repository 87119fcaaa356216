//! The corpus itself: every transcript parses and says what it tries, where
//! it comes from and what it expects; every configuration uses only known
//! keys.

use relayguard_core::check::transcript::{self, Expect, Step};
use relayguard_corpus::{collect, collect_ext, dir};

#[test]
fn transcript_corpus_files_parse_with_headers() {
    let files = collect(&[dir()]).unwrap();
    let (mut attacks, mut legit) = (0, 0);
    let mut problems = Vec::new();
    for file in &files {
        let name = file.display();
        let text = std::fs::read_to_string(file).unwrap();
        let t = match transcript::parse(&text) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                continue;
            }
        };
        let mut problem = |p: &str| problems.push(format!("{name}: {p}"));
        if t.comments.first().is_none_or(|c| c.trim().is_empty()) {
            problem("no first # line saying what it tries");
        }
        if t.peer.is_none() {
            problem("no @peer");
        }
        match &t.config {
            None => problem("no @config"),
            Some(c) if !file.parent().unwrap().join(c).is_file() => {
                problem(&format!("@config {} does not exist", c.display()))
            }
            Some(_) => {}
        }
        if t.source.is_none() {
            problem("no @source");
        }
        if !t.steps.iter().any(|s| matches!(s, Step::Send { .. })) {
            problem("sends nothing");
        }
        for s in &t.steps {
            let Step::Reply { expected, line } = s else {
                continue;
            };
            if !matches!(expected.as_bytes().first(), Some(b'2'..=b'5')) {
                problem(&format!("line {line}: expected reply does not start with 2-5"));
            }
        }
        let dir = file.parent().and_then(|d| d.file_name()).unwrap();
        match (dir.to_str().unwrap(), t.expect) {
            (_, None) => problem("no @expect"),
            ("attacks", Some(Expect::Closed)) => attacks += 1,
            ("legit", Some(Expect::Accepted)) => legit += 1,
            ("attacks" | "legit", Some(e)) => problem(&format!("@expect {e} in the wrong folder")),
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(attacks >= 60, "only {attacks} attacks");
    assert!(legit >= 8, "only {legit} legitimate sessions");
}

#[test]
fn transcript_corpus_configs_use_design_keys() {
    // The keys of the configuration reference; [routes] is free.
    let sections: &[(&str, &[&str])] = &[
        ("domains", &["local", "mailboxes", "relay_to"]),
        ("lan", &["networks"]),
        ("access", &["allow", "list"]),
        (
            "relay",
            &[
                "require_auth",
                "non_local_senders_in_lan",
                "outside_lan",
                "always_from",
                "percent_hack",
                "bang_path",
                "acknowledge_open_relay",
            ],
        ),
        ("auth", &["users", "require_tls"]),
        ("tls", &["cert", "key"]),
        (
            "lists",
            &[
                "black",
                "white",
                "reject_local_sender_outside",
                "reject_local_helo_outside",
            ],
        ),
        (
            "limits",
            &[
                "max_recipients",
                "max_message_size",
                "max_errors",
                "command_timeout_secs",
                "data_timeout_secs",
            ],
        ),
        ("proxy", &["trusted", "header", "xclient"]),
    ];
    let mut count = 0;
    for path in collect_ext(&[dir().join("configs")], "toml").unwrap() {
        count += 1;
        let name = path.display();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# "), "{name}: no leading # line");
        let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (key, value) in &table {
            match key.as_str() {
                "hostname" | "own_addresses" | "routes" => {}
                section => {
                    let known = sections
                        .iter()
                        .find(|(s, _)| *s == section)
                        .unwrap_or_else(|| panic!("{name}: unknown key {section}"))
                        .1;
                    for k in value.as_table().unwrap().keys() {
                        assert!(known.contains(&k.as_str()), "{name}: unknown key {section}.{k}");
                    }
                }
            }
        }
        if let Some(users) = table.get("auth").and_then(|a| a.get("users")) {
            for u in users.as_array().unwrap() {
                for k in u.as_table().unwrap().keys() {
                    assert!(
                        ["name", "password", "relay"].contains(&k.as_str()),
                        "{name}: auth.users.{k}"
                    );
                }
            }
        }
    }
    assert!(count >= 8, "{count} configs");
}

/// What `Config::to_toml` writes of each shipped configuration reads back
/// to the same configuration, and it still validates.
#[test]
fn every_corpus_config_survives_the_toml_round_trip() {
    let configs = collect_ext(&[dir().join("configs")], "toml").unwrap();
    assert!(configs.len() >= 8, "{} configs", configs.len());
    for path in configs {
        let c = relayguard_corpus::load_config(&path).unwrap();
        let back = relayguard_core::Config::from_toml(&c.to_toml())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(back, c, "{}", path.display());
    }
}
