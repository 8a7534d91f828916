//! Ways in and out: `hapair import-heartbeat` (a heartbeat v1 ha.cf, haresources and
//! authkeys become a hapair.conf) and `hapair export-pacemaker` (the configured group becomes
//! `pcs` commands). Both only produce text: nothing here touches a running daemon, the
//! network or a cluster, and nothing runs in the steady state.
//!
//! The rule of both directions: whatever cannot be converted is listed, never dropped
//! silently. Each converter returns its text together with the lists of what it left out
//! (`not_converted`) and what it converted with a change the operator should know about
//! (`notes`); the text repeats both as comments, and `cli` prints them on stderr.
//!
//! Submodules: `heartbeat` (reading the directory and assembling the configuration),
//! `hacf`, `haresources` and `authkeys` (one per heartbeat file), `pacemaker` (the export)
//! and, in fuzz and test builds only, `fuzz` (the property checks of the import).

mod authkeys;
#[cfg(any(fuzzing, feature = "sim"))]
pub mod fuzz;
mod hacf;
mod haresources;
mod heartbeat;
mod pacemaker;

pub use heartbeat::{
    HeartbeatFiles, Import, ImportError, NEW_AUTHKEY_PATH, convert_heartbeat, read_heartbeat,
};
pub use pacemaker::{Export, GROUP, export_pacemaker};

/// What a converter left out or changed, as one line each, in input order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Items dropped, each `SOURCE: WHAT: WHY`.
    pub not_converted: Vec<String>,
    /// Items converted with a change in meaning, each `SOURCE: WHAT`.
    pub notes: Vec<String>,
}

impl Findings {
    /// Records an item that was left out.
    fn skip(&mut self, at: &str, what: &str, why: &str) {
        self.not_converted.push(format!("{at}: {what}: {why}"));
    }

    /// Records an item converted with a change in meaning.
    fn note(&mut self, at: &str, what: &str) {
        self.notes.push(format!("{at}: {what}"));
    }

    /// Appends both lists as `# NOTE:` and `# NOT CONVERTED:` comment lines.
    fn render(&self, out: &mut String) {
        if self.notes.is_empty() && self.not_converted.is_empty() {
            return;
        }
        out.push('\n');
        for n in &self.notes {
            out.push_str(&format!("# NOTE: {}\n", one_line(n)));
        }
        for n in &self.not_converted {
            out.push_str(&format!("# NOT CONVERTED: {}\n", one_line(n)));
        }
    }
}

/// `text` with control characters (newlines included) replaced, so it fits a comment line.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Whether `s` is a valid hapair name (nodes, resources): letters, digits, `-`, `_`, `.`,
/// 1 to 64 bytes.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Whether `s` is a valid interface name: 1 to 15 bytes, no `/`, `:` or whitespace.
fn is_ifname(s: &str) -> bool {
    !s.is_empty() && s.len() <= 15 && !s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// A duration in milliseconds as the configuration writes it: whole seconds as `Ns`, else
/// `Nms`.
fn render_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) { format!("{}s", ms / 1000) } else { format!("{ms}ms") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_durations() {
        assert!(is_name("node-1.example_a") && !is_name("a b") && !is_name(""));
        assert!(is_ifname("eth0") && !is_ifname("eth0:1") && !is_ifname("0123456789abcdef"));
        assert_eq!((render_ms(2000), render_ms(1500)), ("2s".into(), "1500ms".into()));
        assert_eq!(one_line("a\nb"), "a b");
    }
}
