//! The kernel command line (SPEC §2): picks the `hapair.` words out of /proc/cmdline (or the
//! `--cmdline FILE`) and sorts them into boot flags and directive overrides. Other kernel
//! words are ignored. Which keys exist and may be set is the directive table's (`parse`).

use std::path::{Path, PathBuf};

use super::parse::{self, DIRECTIVES, Lines, Override};
use super::{ConfigError, lex};

/// The `hapair.` flags of one kernel command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cmdline {
    /// The file they came from (for error messages).
    pub path: PathBuf,
    /// `hapair.node=NAME`, with its line.
    pub node: Option<(String, u32)>,
    /// `hapair.standby=1`: boot into standby.
    pub standby: bool,
    /// `hapair.disable=1`: `run` exits 0 at once.
    pub disable: bool,
    /// `hapair.KEY=VALUE` for directives, in order.
    pub overrides: Vec<Override>,
}

impl Cmdline {
    /// No flags at all.
    pub fn empty() -> Cmdline {
        Cmdline::default()
    }

    /// Sorts the `hapair.` words of `text` (read from `path`).
    pub fn parse(text: &[u8], path: &Path) -> Result<Cmdline, ConfigError> {
        let mut c = Cmdline { path: path.to_path_buf(), ..Cmdline::default() };
        for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
            let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let err = |m: String| ConfigError::new(path, line, m);
            // Kernel words outside ours may be anything: only our words must be valid.
            let s = String::from_utf8_lossy(raw);
            for raw_word in kernel_words(&s).filter(|w| w.starts_with("hapair.")) {
                let word = match lex::words(raw_word, false).map_err(err)?.as_slice() {
                    [w] => w.clone(),
                    _ => return Err(err(format!("bad kernel flag {raw_word}"))),
                };
                let rest = word.strip_prefix("hapair.").unwrap_or(&word);
                c.flag(rest, line).map_err(err)?;
            }
        }
        Ok(c)
    }

    fn flag(&mut self, rest: &str, line: u32) -> Result<(), String> {
        let Some((key, value)) = rest.split_once('=') else {
            return Err(format!("kernel flag hapair.{rest} has no =VALUE"));
        };
        let bool_flag = |v: &str| match v {
            "1" => Ok(true),
            "0" => Ok(false),
            _ => Err(format!("bad value \"{v}\" for hapair.{key} (use 0 or 1)")),
        };
        match key {
            "node" => self.node = Some((value.to_string(), line)),
            "standby" => self.standby = bool_flag(value)?,
            "disable" => self.disable = bool_flag(value)?,
            _ => match parse::directive(key) {
                Some(d) if d.flag_allowed() => {
                    if value.trim().is_empty() {
                        return Err(format!("empty value for hapair.{key}"));
                    }
                    let o = Override { key: key.to_string(), value: value.to_string(), line };
                    self.overrides.push(o);
                }
                Some(_) => {
                    return Err(format!(
                        "hapair.{key} cannot be set on the kernel command line \
                         (only single-value directives, {})",
                        lists_with_flags()
                    ));
                }
                None => return Err(format!("unknown kernel flag hapair.{key}")),
            },
        }
        Ok(())
    }
}

/// The list directives a kernel flag may set: `serial and ping`.
fn lists_with_flags() -> String {
    let names: Vec<&str> = DIRECTIVES
        .iter()
        .filter(|d| matches!(d.lines, Lines::Replaced(_)))
        .map(|d| d.name)
        .collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Splits a command line the way the kernel does: at spaces outside double quotes (the
/// quotes stay in the word; our own words are then read with the configuration's rules, and
/// `\"` inside their quotes does not end the quote).
fn kernel_words(line: &str) -> impl Iterator<Item = &str> {
    let mut rest = line;
    std::iter::from_fn(move || {
        rest = rest.trim_start();
        if rest.is_empty() {
            return None;
        }
        // Only our own words know the `\"` escape; the kernel's do not.
        let ours = rest.starts_with("hapair.");
        let mut quoted = false;
        let mut prev_backslash = false;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' && !(quoted && prev_backslash) {
                    quoted = !quoted;
                }
                prev_backslash = ours && c == '\\' && !prev_backslash;
                c.is_whitespace() && !quoted
            })
            .map_or(rest.len(), |(i, _)| i);
        let (word, tail) = rest.split_at(end);
        rest = tail;
        Some(word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Cmdline, ConfigError> {
        Cmdline::parse(s.as_bytes(), Path::new("cmdline"))
    }

    #[test]
    fn sorts_flags() {
        let c = parse(
            "BOOT_IMAGE=/vmlinuz ro quiet hapair.node=beta hapair.standby=1 \
             hapair.deadtime=2s hapair.restart_limit=\"3 in 10m\"\n",
        )
        .unwrap();
        assert_eq!(c.node, Some(("beta".to_string(), 1)));
        assert!(c.standby && !c.disable);
        assert_eq!(c.overrides.len(), 2);
        assert_eq!(c.overrides[1].value, "3 in 10m");
    }

    #[test]
    fn refuses_bad_flags() {
        let e = parse("ro hapair.bogus=1").unwrap_err();
        assert_eq!(e.to_string(), "cmdline:1: unknown kernel flag hapair.bogus");
        assert!(parse("hapair.node").is_err());
        assert!(parse("hapair.disable=yes").is_err());
        assert!(parse("hapair.resource=x").unwrap_err().message.contains("cannot be set"));
        assert!(parse("hapair.deadtime=\"2s").unwrap_err().message.contains("unterminated"));
        // Other kernel words may use quotes and backslashes freely.
        let c = parse(r#"foo="a\q b\" x=\ hapair.control="/run/a \"b\".sock""#).unwrap();
        assert_eq!(c.overrides[0].value, r#"/run/a "b".sock"#);
    }
}
