//! Reads a heartbeat v1 `haresources` into hapair groups of `resource` lines (SPEC §7.1). It
//! does not write the rest of the configuration and never fails: what it cannot map is
//! recorded in [`Findings`].
//!
//! The format: one group per logical line (a trailing `\` continues it), `#` comments; the
//! first word is the home node, the others are resources started left to right. A resource
//! is a plain IP address (`IPaddr` implied), `TYPE::ARG::ARG...` (a heartbeat resource
//! script with positional arguments), or a plain name (an init script). The mapping:
//!
//! - `IPaddr::A/P/IF[/BCAST]`, `IPaddr2::...` or a bare `A/P/IF` → `resource ip A/P dev IF`
//!   (a broadcast is noted and dropped). Without prefix or interface, heartbeat took them
//!   from the routing table; so does the OCF agent, so they become `resource ocf
//!   heartbeat:IPaddr2` (or `IPaddr`) with the named parameters `ip`, `cidr_netmask`, `nic`,
//!   `broadcast`.
//! - `Filesystem::DEV::DIR[::FSTYPE[::OPTIONS]]` → `resource ocf heartbeat:Filesystem
//!   device= directory= fstype= options=`.
//! - a plain name → `resource lsb NAME`, except heartbeat's own resource scripts.
//! - anything else is listed as not converted.
//!
//! Every line is a group, at home on its first word, named after its first resource (the
//! name cut to what a group name may be: other characters become `-`, at most 15 bytes) or,
//! when that gives no name or a name taken, `gN` for the Nth line. Resource names are unique
//! across all lines. With more than one line, a line of which no resource converts is listed
//! (a group needs one); past `GROUPS_MAX` groups or `RESOURCES_MAX` resources in all, the rest
//! is listed too.

use std::net::IpAddr;

use super::{Findings, is_ifname, is_name};
use crate::config::{GROUP_NAME_MAX, quote};
use crate::limits::{GROUPS_MAX, RESOURCES_MAX};

/// heartbeat resource scripts (/etc/ha.d/resource.d) that are not init scripts.
const HEARTBEAT_SCRIPTS: [&str; 14] = [
    "AudibleAlarm",
    "Delay",
    "Filesystem",
    "IPaddr",
    "IPaddr2",
    "IPsrcaddr",
    "LVM",
    "LinuxSCSI",
    "MailTo",
    "Raid1",
    "SendArp",
    "Xinetd",
    "drbddisk",
    "portblock",
];

/// One converted line: a group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Group {
    /// The line of haresources it comes from.
    pub line: usize,
    /// Its name, for a `group` line (module docs).
    pub name: String,
    /// The first word of the line, when it is a valid name.
    pub home: Option<String>,
    /// `resource ...` lines, in start order.
    pub resources: Vec<String>,
}

/// Reads `text` (the file haresources): one group per line. With one line, its group is
/// returned even without resources (today's single-group form); with more, a group needs a
/// resource.
pub fn parse(text: &str, found: &mut Findings) -> Vec<Group> {
    let lines = logical_lines(text);
    let several = lines.len() > 1;
    let mut groups: Vec<Group> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (line, words) in lines {
        let at = format!("haresources:{line}");
        if groups.len() == GROUPS_MAX {
            let why = format!("hapair takes at most {GROUPS_MAX} groups (one per line)");
            found.skip(&at, &words.join(" "), &why);
            continue;
        }
        let first_name = names.len();
        let Some(group) = group(line, &words, &mut names, found) else { continue };
        if several && group.resources.is_empty() {
            let why = "no resource of the line converts, and a group needs one";
            found.skip(&at, &words.join(" "), why);
            continue;
        }
        let name = names.get(first_name).map_or(String::new(), |n| group_name(n));
        let taken = |n: &str| groups.iter().any(|g| g.name == n);
        let name = if name.is_empty() || taken(&name) {
            // `gN` with N the group's place, or the first N after it that is free.
            let free = (groups.len() + 1..).map(|n| format!("g{n}")).find(|n| !taken(n));
            // INVARIANT: at most GROUPS_MAX names are taken, so one of the first is free.
            free.expect("a free gN")
        } else {
            name
        };
        groups.push(Group { name, ..group });
    }
    groups
}

/// The group of one line (unnamed yet): its home and the resources that convert, `names`
/// holding those of the lines before. `None` for a line without words.
fn group(
    line: usize,
    words: &[String],
    names: &mut Vec<String>,
    found: &mut Findings,
) -> Option<Group> {
    let at = format!("haresources:{line}");
    let (home, resources) = words.split_first()?;
    let mut group = Group { line, ..Group::default() };
    if is_name(home) {
        group.home = Some(home.clone());
    } else {
        found.skip(&at, home, "the home node is not a valid hapair name");
    }
    for r in resources {
        if names.len() == RESOURCES_MAX {
            let why = format!("hapair takes at most {RESOURCES_MAX} resources in all");
            found.skip(&at, r, &why);
            continue;
        }
        match resource(r, names, found, &at) {
            Ok(line) => group.resources.push(line),
            Err(why) => found.skip(&at, r, &why),
        }
    }
    Some(group)
}

/// A resource's name as a group name: other characters than letters, digits, `-`, `_` and
/// `.` become `-`, a leading `.` goes, and at most [`GROUP_NAME_MAX`] bytes stay. Empty when
/// nothing is left.
fn group_name(resource: &str) -> String {
    let clean: String = resource
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' })
        .collect();
    let clean = clean.trim_start_matches('.');
    // All ASCII now: any byte is a char boundary.
    clean[..clean.len().min(GROUP_NAME_MAX)].to_string()
}

/// Lines joined at trailing backslashes, without comments: (first line number, words).
fn logical_lines(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, Vec<String>)> = None;
    for (i, raw) in text.lines().enumerate() {
        let (body, more) = match raw.trim_end().strip_suffix('\\') {
            Some(b) => (b, true),
            None => (raw, false),
        };
        let words = body.split_whitespace().take_while(|w| !w.starts_with('#'));
        let entry = pending.get_or_insert_with(|| (i + 1, Vec::new()));
        entry.1.extend(words.map(str::to_string));
        if !more && let Some(done) = pending.take().filter(|(_, w)| !w.is_empty()) {
            out.push(done);
        }
    }
    out.extend(pending.filter(|(_, w)| !w.is_empty()));
    out
}

/// One resource word → one `resource` line, or why not.
fn resource(
    word: &str,
    names: &mut Vec<String>,
    found: &mut Findings,
    at: &str,
) -> Result<String, String> {
    // Addresses first: an IPv6 address has `::` of its own.
    if looks_like_ip(word) {
        return ip("IPaddr", word, names, found, at);
    }
    for ty in ["IPaddr", "IPaddr2"] {
        if let Some(spec) = word.strip_prefix(ty).and_then(|r| r.strip_prefix("::")) {
            return ip(ty, spec, names, found, at);
        }
    }
    let parts: Vec<&str> = word.split("::").collect();
    match parts.as_slice() {
        ["Filesystem", args @ ..] => filesystem(args, names),
        [plain] if HEARTBEAT_SCRIPTS.contains(plain) => Err(format!(
            "{plain} is a heartbeat resource script (/etc/ha.d/resource.d), not an init \
             script: use resource ocf or resource exec"
        )),
        [plain] if is_name(plain) => {
            claim(names, plain)?;
            Ok(format!("resource lsb {plain}"))
        }
        [plain] => Err(format!("\"{plain}\" is not a valid init script name")),
        [] => Err("empty resource".into()),
        [ty, ..] => Err(format!(
            "no mapping of {ty}'s positional arguments to named ones: write it as resource \
             ocf PROVIDER:{ty} KEY=VALUE... or resource exec"
        )),
    }
}

/// Whether a bare word is an address spec (`A`, `A/P`, `A/P/IF`...).
fn looks_like_ip(w: &str) -> bool {
    w.split('/').next().is_some_and(|a| a.parse::<IpAddr>().is_ok())
}

/// Records a resource name, refusing a second resource with the same one.
fn claim(names: &mut Vec<String>, name: &str) -> Result<(), String> {
    if names.iter().any(|n| n == name) {
        return Err(format!("a second resource named {name}"));
    }
    names.push(name.to_string());
    Ok(())
}

/// `ADDR[/PREFIX][/IF][/BCAST]` of IPaddr and IPaddr2.
fn ip(
    ty: &str,
    spec: &str,
    names: &mut Vec<String>,
    found: &mut Findings,
    at: &str,
) -> Result<String, String> {
    let mut fields = spec.split('/');
    let addr: IpAddr = fields
        .next()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("\"{spec}\" does not start with an IP address"))?;
    let (mut prefix, mut nic, mut bcast) = (None, None, None);
    for f in fields {
        if let Ok(b) = f.parse::<IpAddr>() {
            bcast = Some(b);
        } else if let (Ok(p), None, None) = (f.parse::<u8>(), prefix, nic.as_ref()) {
            prefix = Some(p);
        } else if is_ifname(f) && nic.is_none() {
            nic = Some(f.to_string());
        } else {
            return Err(format!("cannot read \"{f}\" in {spec}"));
        }
    }
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix.is_some_and(|p| p == 0 || p > max) {
        return Err(format!("bad prefix length in {spec}"));
    }
    let name = addr.to_string();
    claim(names, &name)?;
    if let (Some(p), Some(dev)) = (prefix, &nic) {
        if let Some(b) = bcast {
            let what = format!("{ty}::{spec}: broadcast {b} not carried over");
            found.note(at, &format!("{what} (hapair's ip resource sets no broadcast address)"));
        }
        return Ok(format!("resource ip {addr}/{p} dev {dev}"));
    }
    found.note(
        at,
        &format!(
            "{ty}::{spec} has no prefix or interface: the {ty} agent picks them from the \
             routes as heartbeat did; `resource ip {addr}/PREFIX dev IF` is the native form"
        ),
    );
    let mut line = format!("resource ocf heartbeat:{ty} name {name} ip={addr}");
    if let Some(p) = prefix {
        line.push_str(&format!(" cidr_netmask={p}"));
    }
    if let Some(dev) = nic {
        line.push_str(&format!(" nic={dev}"));
    }
    if let Some(b) = bcast {
        line.push_str(&format!(" broadcast={b}"));
    }
    Ok(line)
}

/// `Filesystem::DEVICE::DIRECTORY[::FSTYPE[::OPTIONS]]`.
fn filesystem(args: &[&str], names: &mut Vec<String>) -> Result<String, String> {
    const KEYS: [&str; 4] = ["device", "directory", "fstype", "options"];
    if args.len() < 2 || args.len() > KEYS.len() || args.iter().any(|a| a.is_empty()) {
        return Err("expected Filesystem::DEVICE::DIRECTORY[::FSTYPE[::OPTIONS]]".into());
    }
    // A second file system gets the mount point's last component in its name.
    let mut name = "Filesystem".to_string();
    if names.contains(&name) {
        let tail = args[1].rsplit('/').find(|s| !s.is_empty()).unwrap_or("root");
        name = format!("Filesystem-{tail}");
        if !is_name(&name) {
            name = format!("Filesystem-{}", names.len() + 1);
        }
    }
    claim(names, &name)?;
    let mut line = String::from("resource ocf heartbeat:Filesystem");
    if name != "Filesystem" {
        line.push_str(&format!(" name {name}"));
    }
    for (k, v) in KEYS.iter().zip(args) {
        line.push_str(&format!(" {}", quote(&format!("{k}={v}"))));
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(text: &str) -> (Vec<Group>, Findings) {
        let mut f = Findings::default();
        (parse(text, &mut f), f)
    }

    #[test]
    fn maps_the_well_known_agents() {
        let (g, f) = conv(
            "# c\nalpha IPaddr::192.0.2.100/24/eth0 \\\n  Filesystem::/dev/md0::/srv::ext4 \
             apache2 # web\n",
        );
        assert_eq!(g.len(), 1);
        assert_eq!((g[0].line, g[0].home.as_deref()), (2, Some("alpha")));
        assert_eq!(
            g[0].resources,
            [
                "resource ip 192.0.2.100/24 dev eth0",
                "resource ocf heartbeat:Filesystem device=/dev/md0 directory=/srv fstype=ext4",
                "resource lsb apache2",
            ]
        );
        assert_eq!(f, Findings::default());
    }

    #[test]
    fn incomplete_addresses_go_to_the_agent() {
        let (g, f) =
            conv("a 192.0.2.7 IPaddr2::192.0.2.8/25/192.0.2.127 192.0.2.9/24/eth1/192.0.2.255\n");
        assert_eq!(
            g[0].resources,
            [
                "resource ocf heartbeat:IPaddr name 192.0.2.7 ip=192.0.2.7",
                "resource ocf heartbeat:IPaddr2 name 192.0.2.8 ip=192.0.2.8 cidr_netmask=25 \
                 broadcast=192.0.2.127",
                "resource ip 192.0.2.9/24 dev eth1",
            ]
        );
        assert_eq!(f.notes.len(), 3, "{f:?}");
        assert!(f.not_converted.is_empty());
    }

    #[test]
    fn lists_what_it_cannot_map() {
        let (g, f) = conv(
            "a MailTo::root::failover drbddisk Filesystem::/dev/x bad/name web web \
             Filesystem::/dev/a::/a Filesystem::/dev/b::/srv/b\nb other\n",
        );
        assert_eq!(
            g[0].resources,
            [
                "resource lsb web",
                "resource ocf heartbeat:Filesystem device=/dev/a directory=/a",
                "resource ocf heartbeat:Filesystem name Filesystem-b device=/dev/b \
                 directory=/srv/b",
            ]
        );
        assert_eq!(g[1].resources, ["resource lsb other"]);
        let skipped: Vec<&str> =
            f.not_converted.iter().map(|s| s.split(": ").nth(1).unwrap()).collect();
        assert_eq!(
            skipped,
            ["MailTo::root::failover", "drbddisk", "Filesystem::/dev/x", "bad/name", "web"]
        );
    }

    /// SPEC §7.1: every line is a group, at home on its first word and named after its first
    /// resource; resource names stay unique across the lines.
    #[test]
    fn every_line_is_a_group() {
        let (g, f) = conv(
            "alpha 192.0.2.100/24/eth0 apache2\n\
             beta IPaddr2::192.0.2.101/24/eth0 Filesystem::/dev/drbd0::/srv::ext4 mysql\n\
             alpha postfix apache2\n\
             beta 2001:db8::1/64/eth0\n\
             alpha MailTo::root\n\
             beta Filesystem::/dev/sdb1::/b Filesystem::/dev/sdc1::/c\n",
        );
        let summary: Vec<(usize, &str, Option<&str>, usize)> = g
            .iter()
            .map(|g| (g.line, g.name.as_str(), g.home.as_deref(), g.resources.len()))
            .collect();
        assert_eq!(
            summary,
            [
                (1, "192.0.2.100", Some("alpha"), 2),
                (2, "192.0.2.101", Some("beta"), 3),
                (3, "postfix", Some("alpha"), 1),
                (4, "2001-db8--1", Some("beta"), 1),
                (6, "Filesystem-b", Some("beta"), 2),
            ]
        );
        let skipped: Vec<String> = f
            .not_converted
            .iter()
            .map(|s| s.splitn(3, ": ").take(2).collect::<Vec<_>>().join(": "))
            .collect();
        assert_eq!(
            skipped,
            [
                "haresources:3: apache2",
                "haresources:5: MailTo::root",
                "haresources:5: alpha MailTo::root",
            ]
        );
        assert!(
            f.not_converted[2].ends_with("no resource of the line converts, and a group needs one")
        );
    }

    #[test]
    fn group_names_are_short_and_unique() {
        assert_eq!(group_name("a-very-long-resource-name"), "a-very-long-res");
        assert_eq!(group_name(".hidden"), "hidden");
        assert_eq!(group_name("..."), "");
        // A name taken, or none: `gN` for the Nth group.
        let (g, _) = conv("a abcdefghijklmnop-1\nb abcdefghijklmnop-2\nc 192.0.2.1/24/eth0\n");
        let names: Vec<&str> = g.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["abcdefghijklmno", "g2", "192.0.2.1"]);
    }

    #[test]
    fn at_most_eight_groups_and_32_resources() {
        let text: String = (0..10).map(|i| format!("a s{i}a s{i}b s{i}c s{i}d\n")).collect();
        let (g, f) = conv(&text);
        assert_eq!(g.len(), 8);
        assert_eq!(g.iter().map(|g| g.resources.len()).sum::<usize>(), 32);
        assert_eq!(f.not_converted.len(), 2, "{f:?}");
        assert!(
            f.not_converted[0]
                .starts_with("haresources:9: a s8a s8b s8c s8d: hapair takes at most 8 groups")
        );
        let text: String = (0..5)
            .map(|i| {
                format!("a {}\n", (0..7).map(|j| format!("r{i}-{j}")).collect::<Vec<_>>().join(" "))
            })
            .collect();
        let (g, f) = conv(&text);
        assert_eq!(g.iter().map(|g| g.resources.len()).collect::<Vec<_>>(), [7, 7, 7, 7, 4]);
        assert_eq!(f.not_converted.len(), 3);
        assert!(f.not_converted[0].ends_with("hapair takes at most 32 resources in all"));
    }
}
