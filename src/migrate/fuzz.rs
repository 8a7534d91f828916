//! Property checks of the heartbeat v1 import (`hapair import-heartbeat`: the ha.cf,
//! haresources and authkeys readers and the assembly), for the fuzz target (tests/fuzz/,
//! `cfg(fuzzing)`) and for the replay of its committed corpus in the test build
//! (`tests/pure/fuzz_corpus.rs`, `sim` feature); never part of the shipped binary. No I/O: the
//! three files come in as one input, NUL-separated, and are taken as `read_heartbeat` takes
//! them (bytes that are not UTF-8 replaced).
//!
//! Properties: the conversion never panics; the findings appended as comments change nothing
//! (the text passes `check` exactly when no note says it does not, and what passes
//! round-trips as any configuration does, `config::fuzz::config`); and no secret gets out:
//! the authkeys secrets and the stonith arguments of ha.cf can be anything without changing
//! one byte of the output.

use std::path::PathBuf;

use super::heartbeat::{HeartbeatFiles, Import, convert_heartbeat};

/// The note `convert_heartbeat` adds when its result does not pass `check`.
const DOES_NOT_PASS: &str = "hapair check: ";

/// Checks `data` as ha.cf, haresources and authkeys, separated by NUL bytes. True when the
/// result is a valid configuration.
pub fn heartbeat_import(data: &[u8]) -> bool {
    let mut parts = data.splitn(3, |&b| b == 0);
    let mut next = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let files = HeartbeatFiles {
        dir: PathBuf::from("/etc/ha.d"),
        ha_cf: next(),
        haresources: next(),
        authkeys: next(),
    };
    let import = convert_heartbeat(&files);
    let passes = !import.findings.notes.iter().any(|n| n.starts_with(DOES_NOT_PASS));
    let valid = crate::config::fuzz::config(import.config.as_bytes());
    assert_eq!(valid, passes, "the findings changed what the text means:\n{}", import.config);
    let redacted = HeartbeatFiles {
        ha_cf: without_stonith_arguments(&files.ha_cf),
        authkeys: without_secrets(&files.authkeys),
        ..files.clone()
    };
    same(&import, &convert_heartbeat(&redacted));
    valid
}

fn same(import: &Import, redacted: &Import) {
    assert_eq!(import.config, redacted.config, "a secret changed the configuration");
    assert_eq!(import.findings, redacted.findings, "a secret changed the findings");
    assert_eq!(import.authkeys, redacted.authkeys, "a secret changed the authkeys summary");
}

/// `authkeys` with every secret (and comment) gone, each line of the same kind as before: `N
/// METHOD` lines without their key, `auth N` as is, anything else a line of one word.
fn without_secrets(authkeys: &str) -> String {
    let lines = authkeys.lines().map(|line| {
        let words: Vec<&str> =
            line.split_whitespace().take_while(|w| !w.starts_with('#')).collect();
        match words.as_slice() {
            [] => String::new(),
            ["auth", id] => format!("auth {id}"),
            [id, method, ..] if id.bytes().all(|b| b.is_ascii_digit()) => format!("{id} {method}"),
            _ => "?".to_string(),
        }
    });
    lines.collect::<Vec<_>>().join("\n")
}

/// `ha_cf` with the arguments of every `stonith*` line gone (they may hold passwords).
fn without_stonith_arguments(ha_cf: &str) -> String {
    let lines = ha_cf.lines().map(|line| {
        let first = line.split('#').next().unwrap_or("").split_whitespace().next();
        match first {
            Some(name) if name.to_ascii_lowercase().starts_with("stonith") => name.to_string(),
            _ => line.to_string(),
        }
    });
    lines.collect::<Vec<_>>().join("\n")
}
