//! Property checks of the configuration's decoders of outside input, for the fuzz targets
//! (tests/fuzz/, `cfg(fuzzing)`) and for the replay of their committed corpus in the test
//! build (`tests/pure/fuzz_corpus.rs`, `sim` feature); never part of the shipped binary.
//!
//! - `config`: any bytes as the configuration file (`parse_bytes`: lexing, directives and the
//!   cross-checks). An error is one line naming the file; a valid configuration's canonical
//!   text (`check --print`) parses back to the same `Config`, prints the same, and has the
//!   same digest; `check`'s other readings of the file and `export-pacemaker` take it.
//! - `cmdline`: any bytes as the kernel command line (`Cmdline::parse`). The flags written
//!   back as a command line read the same; applied to a valid file, they give an error of one
//!   line or a configuration that round-trips as above.
//!
//! No I/O (paths are only names in messages), no state between calls.

use std::path::Path;

use super::cmdline::Cmdline;
use super::lex::quote;
use super::load::{control_group_location, parse_bytes, parse_str, resource_locations};
use super::{Config, ConfigError};

/// The name the file is given in messages.
const FILE: &str = "/etc/hapair/hapair.conf";
/// The name the kernel command line is given in messages.
const CMDLINE: &str = "/proc/cmdline";
/// A valid file for the kernel flags to change: every kind of overridable directive is either
/// here or defaulted.
const BASE: &str = "node alpha\nnode beta\nkeepalive 200ms\nauthkey /etc/hapair/authkey\n\
                    serial /dev/ttyS0\nbcast eth1\nhome alpha\n\
                    resource ip 192.0.2.100/24 dev eth0\nping 192.0.2.254\n";

/// Checks `data` as a configuration file. True when it is a valid configuration.
pub fn config(data: &[u8]) -> bool {
    let (file, flags) = (Path::new(FILE), Cmdline::empty());
    match parse_bytes(data, file, &flags) {
        Ok(config) => {
            round_trip(&config);
            let resources = resource_locations(data, file, &flags).map(|l| l.len());
            assert_eq!(resources, Ok(config.resources.len()), "resource lines not found again");
            let group = control_group_location(data, file, &flags).map(|l| l.is_some());
            assert_eq!(group, Ok(config.local.control_group.is_some()), "control_group not found");
            true
        }
        Err(e) => {
            one_line(&e);
            false
        }
    }
}

/// Checks `data` as a kernel command line. True when it holds valid `hapair.` flags and they
/// make the base file a valid configuration.
pub fn cmdline(data: &[u8]) -> bool {
    let path = Path::new(CMDLINE);
    let flags = match Cmdline::parse(data, path) {
        Ok(flags) => flags,
        Err(e) => {
            one_line(&e);
            return false;
        }
    };
    let text = write_back(&flags);
    match Cmdline::parse(text.as_bytes(), path) {
        Ok(again) => assert_eq!(again, flags, "flags -> command line -> flags:\n{text}"),
        Err(e) => panic!("the flags written back do not parse: {e}\n{text}"),
    }
    match parse_bytes(BASE.as_bytes(), Path::new(FILE), &flags) {
        Ok(config) => {
            round_trip(&config);
            true
        }
        Err(e) => {
            one_line(&e);
            false
        }
    }
}

/// The canonical text of `config` parses back to it, prints the same and has its digest.
fn round_trip(config: &Config) {
    let text = config.to_string();
    let again = match parse_str(&text, Path::new(FILE)) {
        Ok(again) => again,
        Err(e) => panic!("the canonical text does not parse: {e}\n{text}"),
    };
    assert_eq!(&again, config, "parse -> print -> parse changed the configuration:\n{text}");
    assert_eq!(again.to_string(), text, "the canonical text is not stable");
    assert_eq!(again.digest(), config.digest(), "the digest changed:\n{text}");
    let _ = config.warnings();
    let _ = crate::migrate::export_pacemaker(config, Path::new(FILE));
}

/// A configuration error is one line a user can act on: the file (and line), then why.
fn one_line(e: &ConfigError) {
    let text = e.to_string();
    assert!(!text.contains(['\n', '\r']), "an error of more than one line: {text:?}");
    assert!(text.starts_with(FILE) || text.starts_with(CMDLINE), "no file named: {text:?}");
}

/// `flags` as a kernel command line: each flag on the line it came from, every value quoted
/// as the configuration's lexer reads it back.
fn write_back(flags: &Cmdline) -> String {
    let lines = flags.overrides.iter().map(|o| o.line).chain(flags.node.as_ref().map(|n| n.1));
    let mut out = vec![String::new(); lines.max().unwrap_or(1) as usize];
    let mut put = |line: u32, word: String| {
        let at = &mut out[line as usize - 1];
        at.push(' ');
        at.push_str(&word);
    };
    if let Some((node, line)) = &flags.node {
        put(*line, format!("hapair.node={}", quote(node)));
    }
    for o in &flags.overrides {
        put(o.line, format!("hapair.{}={}", o.key, quote(&o.value)));
    }
    if flags.standby {
        put(1, "hapair.standby=1".into());
    }
    if flags.disable {
        put(1, "hapair.disable=1".into());
    }
    out.join("\n")
}
