//! `hapair import-heartbeat DIR`: reads DIR/ha.cf, DIR/haresources and DIR/authkeys and
//! assembles a hapair.conf from what `hacf`, `haresources` and `authkeys` make of them. The
//! reading is [`read_heartbeat`] (the only I/O); [`convert_heartbeat`] is pure. It does not
//! generate or write the new key: `cli` does, since printing a secret is its decision.
//!
//! The result is checked with the real configuration parser; when it does not pass (for
//! example a heartbeat timing hapair refuses), that is a note naming the line to fix.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::authkeys::{self, AuthKeys};
use super::hacf::{self, DEFAULT_UDPPORT, HaCf};
use super::haresources::{self, Group};
use super::{Findings, render_ms};

/// Where the converted configuration tells the operator to put the new key.
pub const NEW_AUTHKEY_PATH: &str = "/etc/hapair/authkey";
/// hapair's watchdog timeout when the configuration gives none (README).
const WATCHDOG_DEFAULT_MS: u64 = 10_000;

/// The three heartbeat files, as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatFiles {
    /// The directory they came from (for the header comment).
    pub dir: PathBuf,
    pub ha_cf: String,
    pub haresources: String,
    pub authkeys: String,
}

/// A heartbeat file could not be read.
#[derive(Debug)]
pub struct ImportError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub error: io::Error,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: cannot read: {}", self.path.display(), self.error)
    }
}

impl std::error::Error for ImportError {}

/// The converted configuration and what it could not carry over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// The hapair.conf text, findings included as comments at the end.
    pub config: String,
    /// What was left out or changed.
    pub findings: Findings,
    /// What becomes of heartbeat's authkeys, one sentence (a new key is needed).
    pub authkeys: String,
}

/// Reads the three files of `dir`; the error names the first that cannot be read. Bytes that
/// are not UTF-8 are replaced (heartbeat's files are ASCII).
pub fn read_heartbeat(dir: &Path) -> Result<HeartbeatFiles, ImportError> {
    let read = |name: &str| {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(error) => Err(ImportError { path, error }),
        }
    };
    Ok(HeartbeatFiles {
        dir: dir.to_path_buf(),
        ha_cf: read("ha.cf")?,
        haresources: read("haresources")?,
        authkeys: read("authkeys")?,
    })
}

/// Converts the files into a hapair.conf (module docs).
pub fn convert_heartbeat(files: &HeartbeatFiles) -> Import {
    let mut found = Findings::default();
    let cf = hacf::parse(&files.ha_cf, &mut found);
    let groups = haresources::parse(&files.haresources, &mut found);
    let keys = authkeys::parse(&files.authkeys, &mut found);
    let mut out = format!(
        "# hapair.conf converted by `hapair import-heartbeat` from the heartbeat v1 files\n\
         # (ha.cf, haresources, authkeys) in {}.\n\
         # Review it, then run `hapair check` on each node.\n",
        super::one_line(&files.dir.display().to_string())
    );
    nodes_and_timing(&cf, &mut out, &mut found);
    authkey(&keys, &mut out);
    media(&cf, &mut out, &mut found);
    group_lines(&cf, &groups, &mut out, &mut found);
    health(&cf, &mut out);
    if let Err(e) = crate::config::parse_str(&out, Path::new("hapair.conf")) {
        found.note("hapair check", &format!("the result does not pass yet: {e}: fix it by hand"));
    }
    found.render(&mut out);
    Import { config: out, findings: found, authkeys: keys.summary() }
}

fn nodes_and_timing(cf: &HaCf, out: &mut String, found: &mut Findings) {
    out.push('\n');
    if cf.nodes.len() != 2 {
        let why = format!("found {} node name(s); hapair needs exactly two", cf.nodes.len());
        found.skip("ha.cf", "node", &why);
    }
    for n in &cf.nodes {
        out.push_str(&format!("node {n}\n"));
    }
    // heartbeat's defaults differ from hapair's: write every timing heartbeat ran with.
    let names = ["keepalive", "warntime", "deadtime", "initdead"];
    for (name, (ms, default)) in names.into_iter().zip(cf.timings()) {
        let why = if default { " # heartbeat's default" } else { "" };
        out.push_str(&format!("{name} {}{why}\n", render_ms(ms)));
    }
    if let Some(p) = cf.udpport {
        out.push_str(&format!("udpport {p}\n"));
    }
}

fn authkey(keys: &AuthKeys, out: &mut String) {
    out.push_str(&format!(
        "# authkeys: heartbeat's {} is not reused: hapair authenticates with\n\
         # HMAC-SHA256 under its own key. Write the new key (printed on stderr by\n\
         # import-heartbeat, or make one with `hapair keygen`) to {NEW_AUTHKEY_PATH}\n\
         # on both nodes, mode 0600, owned by root.\nauthkey {NEW_AUTHKEY_PATH}\n",
        keys.old()
    ));
}

fn media(cf: &HaCf, out: &mut String, found: &mut Findings) {
    out.push('\n');
    for m in &cf.media {
        out.push_str(&format!("{m}\n"));
    }
    let udpport = cf.udpport.unwrap_or(DEFAULT_UDPPORT);
    for (line, dev, group, port, ttl) in &cf.mcast {
        out.push_str(&format!("mcast {dev} {group} ttl {ttl}\n"));
        if *port != udpport {
            let what = format!("mcast {dev} {group} port {port} now uses udpport {udpport}");
            found.note(&format!("ha.cf:{line}"), &format!("{what} (one port for all UDP media)"));
        }
    }
    for (dev, addrs) in &cf.ucast {
        ucast(dev, addrs, out, found);
    }
}

/// hapair lists both nodes' addresses on one interface; heartbeat's file names the peer's
/// only, so a single address is a gap the operator fills.
fn ucast(dev: &str, addrs: &[(usize, IpAddr)], out: &mut String, found: &mut Findings) {
    match addrs {
        [(_, a), (_, b), rest @ ..] if a.is_ipv4() == b.is_ipv4() => {
            out.push_str(&format!("ucast {dev} {a} {b}\n"));
            for (line, extra) in rest {
                found.skip(
                    &format!("ha.cf:{line}"),
                    &format!("ucast {dev} {extra}"),
                    "a pair \
                           has two addresses per interface; the first two were kept",
                );
            }
        }
        [(line, a), ..] => {
            out.push_str(&format!("# ucast {dev} {a} ADDRESS-OF-THE-OTHER-NODE\n"));
            found.skip(
                &format!("ha.cf:{line}"),
                &format!("ucast {dev} {a}"),
                "hapair lists both nodes' addresses on the interface and heartbeat's file names \
                 only the peer's: add the node's own address (`ucast IF ADDR ADDR`) and \
                 uncomment the line",
            );
        }
        [] => {}
    }
}

/// The resources: one haresources line is the one group of a file without `group` lines, at
/// `home`; several are a `group` line each, at home on its line's node (SPEC §7.1).
fn group_lines(cf: &HaCf, groups: &[Group], out: &mut String, found: &mut Findings) {
    out.push('\n');
    let single = if let [one] = groups { Some(one) } else { None };
    if let Some(h) = single.and_then(|g| g.home.as_ref()) {
        if cf.nodes.contains(h) {
            out.push_str(&format!("home {h}\n"));
        } else {
            found.skip("haresources", &format!("home {h}"), "not a node of ha.cf");
        }
    }
    match cf.auto_failback {
        Some(b) => out.push_str(&format!("auto_failback {}\n", if b { "on" } else { "off" })),
        None => {
            found.note("ha.cf", "no auto_failback line: heartbeat's default (legacy) is on");
            out.push_str("auto_failback on\n");
        }
    }
    for g in groups {
        if single.is_none() {
            out.push_str(&format!("group {}", g.name));
            match &g.home {
                Some(h) if cf.nodes.contains(h) => out.push_str(&format!(" home {h}")),
                Some(h) => {
                    let at = format!("haresources:{}", g.line);
                    let why = "not a node of ha.cf: the group is at home on the first node";
                    found.skip(&at, &format!("home {h}"), why);
                }
                None => {}
            }
            out.push('\n');
        }
        for r in &g.resources {
            out.push_str(&format!("{r}\n"));
        }
    }
}

fn health(cf: &HaCf, out: &mut String) {
    let mut lines = Vec::new();
    if let Some(dev) = &cf.watchdog {
        // hapair pets at a third of the timeout: make room for three keepalives.
        // Saturating: ha.cf's keepalive can be any u64 of milliseconds.
        let need_ms = cf.timings()[0].0.saturating_mul(3);
        if need_ms > WATCHDOG_DEFAULT_MS {
            lines.push(format!("watchdog {dev} timeout {}s", need_ms.div_ceil(1000)));
        } else {
            lines.push(format!("watchdog {dev}"));
        }
    }
    if !cf.ping.is_empty() {
        let addrs: Vec<String> = cf.ping.iter().map(IpAddr::to_string).collect();
        lines.push(format!("ping {}", addrs.join(" ")));
    }
    if cf.realtime {
        lines.push("realtime on".into());
    }
    if !lines.is_empty() {
        out.push('\n');
        for l in lines {
            out.push_str(&format!("{l}\n"));
        }
    }
    out.push_str(NO_HEARTBEAT_COUNTERPART);
}

/// What heartbeat had nothing for (SPEC §7.6): the kernel's error counters and the BMC's own
/// sensors and event log, so that a node hands its group over before a DIMM, a NIC, a disk,
/// a fan or a supply fails. Commented out: the devices are the operator's to name.
const NO_HEARTBEAT_COUNTERPART: &str = "
# heartbeat had nothing like these: hand the group over while the kernel counts errors that
# come before a failure (README \"Health and fencing\", `errors`). Name your devices, then
# uncomment:
# errors edac max 10 in 1h             # memory errors corrected by ECC; any uncorrected one
# errors net eth0 max 100 in 10m       # the service LAN's NIC
# errors disk sda max 5 in 1h          # SCSI I/O errors
# ipmi device /dev/ipmi0               # the BMC's sensors and event log (ipmi_si, ipmi_devintf)
";

#[cfg(test)]
mod tests {
    use super::*;

    fn files(ha_cf: &str, haresources: &str, authkeys: &str) -> HeartbeatFiles {
        HeartbeatFiles {
            dir: PathBuf::from("/etc/ha.d"),
            ha_cf: ha_cf.into(),
            haresources: haresources.into(),
            authkeys: authkeys.into(),
        }
    }

    #[test]
    fn small_pair_converts_exactly() {
        let i = convert_heartbeat(&files(
            "keepalive 2\ndeadtime 30\nwarntime 10\ninitdead 120\nudpport 694\nbaud 19200\n\
             serial /dev/ttyS0\nbcast eth1\nauto_failback off\nnode alpha\nnode beta\n\
             watchdog /dev/watchdog\nping 192.0.2.254\n",
            "alpha 192.0.2.100/24/eth0 apache2\n",
            "auth 1\n1 sha1 secret\n",
        ));
        let expected = "# hapair.conf converted by `hapair import-heartbeat` from the heartbeat \
v1 files
# (ha.cf, haresources, authkeys) in /etc/ha.d.
# Review it, then run `hapair check` on each node.

node alpha
node beta
keepalive 2s
warntime 10s
deadtime 30s
initdead 120s
udpport 694
# authkeys: heartbeat's method sha1 (id 1) is not reused: hapair authenticates with
# HMAC-SHA256 under its own key. Write the new key (printed on stderr by
# import-heartbeat, or make one with `hapair keygen`) to /etc/hapair/authkey
# on both nodes, mode 0600, owned by root.
authkey /etc/hapair/authkey

serial /dev/ttyS0 baud 19200
bcast eth1

home alpha
auto_failback off
resource ip 192.0.2.100/24 dev eth0
resource lsb apache2

watchdog /dev/watchdog
ping 192.0.2.254
"
        .to_string()
            + NO_HEARTBEAT_COUNTERPART;
        assert_eq!(i.config, expected);
        assert_eq!(i.findings, Findings::default());
        assert!(!i.config.contains("secret"));
        // The suggested `errors` lines, uncommented, are accepted as they stand.
        let uncommented =
            i.config.replace("\n# errors ", "\nerrors ").replace("\n# ipmi ", "\nipmi ");
        assert_eq!(uncommented.matches("\nerrors ").count(), 3);
        assert_eq!(uncommented.matches("\nipmi ").count(), 1);
        let parsed = crate::config::parse_str(&uncommented, Path::new("hapair.conf"));
        assert!(parsed.is_ok(), "{parsed:?}");
    }

    /// SPEC §7.1: every haresources line is a group at home on its node, and the result
    /// passes `check` with the groups in it.
    #[test]
    fn several_haresources_lines_are_groups() {
        let i = convert_heartbeat(&files(
            "node alpha\nnode beta\nbcast eth1\nauto_failback off\n",
            "alpha 192.0.2.100/24/eth0 apache2\nbeta 192.0.2.101/24/eth0 mysql\n\
             gamma 192.0.2.102/24/eth0\n",
            "auth 1\n1 sha1 secret\n",
        ));
        let (_, groups) = i.config.split_once("\nauto_failback off\n").unwrap();
        let (groups, _) = groups.split_once("\n\n").unwrap();
        assert_eq!(
            groups,
            "group 192.0.2.100 home alpha\nresource ip 192.0.2.100/24 dev eth0\n\
             resource lsb apache2\ngroup 192.0.2.101 home beta\n\
             resource ip 192.0.2.101/24 dev eth0\nresource lsb mysql\n\
             group 192.0.2.102\nresource ip 192.0.2.102/24 dev eth0"
        );
        assert!(!i.config.contains("\nhome "), "{}", i.config);
        let gamma = "haresources:3: home gamma: not a node of ha.cf: the group is at home on \
                     the first node";
        assert_eq!(i.findings.not_converted, [gamma]);
        let c = crate::config::parse_str(&i.config, Path::new("hapair.conf")).unwrap();
        let homes: Vec<&str> = c.groups.iter().map(|g| g.home.as_str()).collect();
        assert_eq!(homes, ["alpha", "beta", "alpha"]);
    }

    /// A keepalive of any size gives a watchdog line, never an overflow (found through the
    /// heartbeat_import fuzz target: tests/fuzz/corpus/heartbeat_import/crash-keepalive-*).
    #[test]
    fn a_huge_keepalive_is_noted_not_an_overflow() {
        let i = convert_heartbeat(&files(
            "node a\nnode b\nbcast eth0\nkeepalive 9999999999999999999ms\nwatchdog /dev/watchdog\n",
            "",
            "auth 1\n1 crc\n",
        ));
        assert!(i.config.contains("\nwatchdog /dev/watchdog timeout "), "{}", i.config);
        assert!(i.config.contains("# NOTE: hapair check: the result does not pass yet"));
    }

    /// `import-heartbeat` turns `mcast6` and `ping6` into `mcast` and `ping` lines that
    /// `check` takes (SPEC §7.7).
    #[test]
    fn mcast6_and_ping6_convert_to_lines_check_takes() {
        let i = convert_heartbeat(&files(
            "node a\nnode b\nmcast6 eth1 ff02::1:694 694 1 0\nbcast eth0\nping6 2001:db8::fe\n",
            "",
            "auth 1\n1 crc\n",
        ));
        assert!(i.config.contains("\nmcast eth1 ff02::1:694 ttl 1\n"), "{}", i.config);
        assert!(i.config.contains("\nping 2001:db8::fe\n"), "{}", i.config);
        assert!(!i.config.contains("NOT CONVERTED"), "{}", i.config);
        let key = i.config.replace("authkey /etc/hapair/authkey", "authkey /k");
        crate::config::parse_str(&key, std::path::Path::new("t.conf")).expect("check takes it");
    }

    #[test]
    fn gaps_are_listed_and_timing_errors_noted() {
        let i = convert_heartbeat(&files(
            "node a\nnode b\nkeepalive 5\nmcast eth0 239.0.0.1 700 1 0\nucast eth2 192.0.2.2\n\
             watchdog /dev/watchdog\ndeadtime 3\n",
            "c foo\n",
            "",
        ));
        let c = &i.config;
        assert!(c.contains("\nmcast eth0 239.0.0.1 ttl 1\n"), "{c}");
        assert!(c.contains("\n# ucast eth2 192.0.2.2 ADDRESS-OF-THE-OTHER-NODE\n"), "{c}");
        assert!(c.contains("\nwatchdog /dev/watchdog timeout 15s\n"), "{c}");
        assert!(c.contains("# NOT CONVERTED: ha.cf:5: ucast eth2 192.0.2.2: hapair lists"), "{c}");
        assert!(c.contains("# NOT CONVERTED: haresources: home c: not a node"), "{c}");
        assert!(c.contains("# NOT CONVERTED: authkeys: auth: no `auth N` line"), "{c}");
        assert!(c.contains("# NOTE: ha.cf:4: mcast eth0 239.0.0.1 port 700 now uses"), "{c}");
        assert!(
            c.contains("# NOTE: hapair check: the result does not pass yet: hapair.conf:"),
            "{c}"
        );
        assert!(c.contains("# NOTE: ha.cf: no auto_failback line"), "{c}");
        assert!(
            c.contains(
                "\nkeepalive 5s\nwarntime 1500ms # heartbeat's default\ndeadtime 3s\n\
                            initdead 12s # heartbeat's default\n"
            ),
            "{c}"
        );
    }
}
