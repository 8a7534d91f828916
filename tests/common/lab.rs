//! `Lab`: scripts/lab.sh from a test — `up` on `Lab::up`, `down` on drop (also when the test
//! panics) — with the lab's names and addresses read back from `lab.sh env`.
//!
//! Lab names are `<tag><pid>n<count>` (tag: one lowercase letter or digit; count: labs this
//! process brought up before), so neither parallel test binaries nor the parallel tests of one
//! binary ever share a lab, whatever tags they pick. Not here: hapair itself; end-to-end tests start their daemons with
//! `exec_in(lab.ns(Node::Alpha), ...)` and the lab's `down` ends whatever they leave running.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::try_cmd;

/// The lab's service address, held by the `ip` resources of the tests (board/lab/).
pub const VIP: &str = "192.0.2.100";
/// The lab's three media; each node's serial device comes from its kernel command line.
pub const THREE_MEDIA: &str =
    "serial /dev/ttyS0\nucast xover0 198.51.100.1 198.51.100.2\nbcast lan0";

/// A lab node (namespace).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// Node A: lan0 192.0.2.1 / 2001:db8::1, xover0 198.51.100.1/30, serial `alpha-tty`.
    Alpha,
    /// Node B: lan0 192.0.2.2 / 2001:db8::2, xover0 198.51.100.2/30, serial `beta-tty`.
    Beta,
    /// The client: lan0 192.0.2.10 / 2001:db8::10.
    Client,
    /// The switch: bridge br0 with ports alpha, beta, client.
    Lan,
}

impl Node {
    /// The other daemon node: beta for alpha, alpha for beta.
    pub fn other(self) -> Node {
        match self {
            Node::Alpha => Node::Beta,
            Node::Beta => Node::Alpha,
            other => panic!("{other:?} runs no daemon"),
        }
    }

    /// The name lab.sh uses on its command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Node::Alpha => "alpha",
            Node::Beta => "beta",
            Node::Client => "client",
            Node::Lan => "lan",
        }
    }
}

/// A running lab, torn down on drop.
pub struct Lab {
    name: String,
    env: HashMap<String, String>,
}

impl Lab {
    /// `lab.sh up --name <tag><pid>n<count>`; panics (after cleaning up) when it fails.
    pub fn up(tag: char) -> Lab {
        Lab::up_with(tag, &[])
    }

    /// `lab.sh up ARGS... --name <tag><pid>n<count>` (`&["--routed"]`: the routed lab, whose
    /// names and addresses are in the `LAB_*` variables the script's header lists).
    pub fn up_with(tag: char, args: &[&str]) -> Lab {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let count = COUNT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{tag}{}n{count}", std::process::id());
        // lab.sh takes 1 to 12 of [a-z0-9]: a 7-digit pid leaves 3 digits for the count.
        assert!(name.len() <= 12, "lab name {name} too long for lab.sh");
        let mut lab = Lab { name, env: HashMap::new() };
        lab.ok(&[&["up"], args].concat());
        let text = lab.ok(&["env"]);
        lab.env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        lab
    }

    /// The lab's `--name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `lab.sh ARGS... --name NAME`, whatever its exit status.
    pub fn sh(&self, args: &[&str]) -> Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab.sh");
        Command::new(script)
            .args(args)
            .args(["--name", &self.name])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("lab.sh {args:?}: {e}"))
    }

    /// Runs `lab.sh ARGS...`, panicking with its stderr on failure; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.sh(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "lab.sh {args:?} failed: {stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A `LAB_*` variable from `lab.sh env` (see the script's header).
    pub fn var(&self, key: &str) -> &str {
        self.env.get(key).map(String::as_str).unwrap_or_else(|| panic!("lab has no {key}"))
    }

    /// The namespace of `node`, for `run_in` / `exec_in`.
    pub fn ns(&self, node: Node) -> &str {
        match node {
            Node::Alpha => self.var("LAB_NS_ALPHA"),
            Node::Beta => self.var("LAB_NS_BETA"),
            Node::Client => self.var("LAB_NS_CLIENT"),
            Node::Lan => self.var("LAB_NS_LAN"),
        }
    }

    /// The serial end of `node` (a symlink to a pty; it changes on `restore serial`).
    pub fn tty(&self, node: Node) -> &str {
        match node {
            Node::Alpha => self.var("LAB_TTY_ALPHA"),
            Node::Beta => self.var("LAB_TTY_BETA"),
            other => panic!("{other:?} has no serial line"),
        }
    }

    /// The lab's state directory.
    pub fn dir(&self) -> String {
        format!("/run/hapair-lab/{}", self.name)
    }

    /// The serial relay's pid, while it runs.
    pub fn relay_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(format!("{}/relay.pid", self.dir())).ok()?;
        text.trim().parse().ok()
    }

    /// Every namespace of any run of this lab's name that exists now.
    pub fn namespaces(&self) -> Vec<String> {
        let prefix = format!("hlab-{}-", self.name);
        let list = try_cmd(&["ip", "netns", "list"]).unwrap_or_default();
        list.lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&prefix))
            .map(str::to_owned)
            .collect()
    }

    /// `lab.sh cut WHAT NODE` (WHAT: lan, xover; or serial with any node).
    pub fn cut(&self, what: &str, node: Node) {
        self.ok(&["cut", what, node.as_str()]);
    }

    /// `lab.sh restore WHAT NODE`.
    pub fn restore(&self, what: &str, node: Node) {
        self.ok(&["restore", what, node.as_str()]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = self.sh(&["down"]);
        if !out.status.success() {
            eprintln!("lab.sh down: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}
