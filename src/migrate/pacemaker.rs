//! `hapair export-pacemaker`: the `pcs` commands that recreate the configured groups on a
//! Pacemaker/Corosync cluster, for a pair that grows into a cluster. Pure: it prints text for
//! the operator to review and run; it runs nothing and talks to no cluster.
//!
//! The mapping: each group becomes a Pacemaker group, `hapair` for the one group of a file
//! without `group` lines, else the group's name (SPEC §7.1). Each resource in group order
//! becomes `pcs resource create ID AGENT PARAMS op monitor interval=MONITOR_INTERVAL --group
//! GROUP` (`ip` → `ocf:heartbeat:IPaddr2`, `lsb` → `lsb:NAME`, `ocf` → `ocf:PROVIDER:AGENT`);
//! an `exec` resource has no counterpart and becomes a comment (listed, not dropped).
//! `restart_limit N in W` becomes `migration-threshold=N+1 failure-timeout=W` (N restarts in
//! place, the next failure moves the group); each group's home a location preference of score
//! 100; the pair's `auto_failback off` a default stickiness of 200 (above the preference, so a
//! group stays where it runs), `on` a stickiness of 0, and a group whose own differs the same
//! as its meta attribute. Pacemaker IDs must start with a letter or `_` and be unique, so a
//! resource name that does not start so (an ip resource's default name, its address) or that
//! is a group's ID gets the kind as prefix (`ip-192.0.2.100`), and a group name that does not
//! start so gets `group-`. Every word is shell-quoted when it needs it.
//!
//! A `fence` line that runs a fence agent with long options (`fence /usr/sbin/fence_ipmilan
//! --ip=A --username=U --password-script=F --lanplus`) becomes one stonith device per node,
//! `pcs stonith create fence-NODE fence_ipmilan ip=A username=U password_script=F lanplus=1
//! pcmk_host_list=NODE`, kept off that node by a location constraint: hapair runs its one line
//! on the node that fences, against the peer, where a Pacemaker device names the node it
//! fences. A password never appears in the output: `password_script=` passes only the
//! script's path (the agent runs it on the fencing node), and a `--password=` is left out and
//! listed. `--action=reboot` is Pacemaker's default; another action becomes
//! `pcmk_reboot_action`. Short options and anything else an agent's metadata does not name
//! leave the line not converted, with the reason (see `stonith`).

use std::path::Path;

use super::{Findings, one_line, render_ms};
use crate::config::{Config, Fence, Group, IpResource, Resource};

/// The Pacemaker group the commands create for the one group of a file without `group` lines.
pub const GROUP: &str = "hapair";
/// Location score of the home node.
const HOME_SCORE: u32 = 100;
/// Stickiness that keeps the group where it runs (above [`HOME_SCORE`]).
const STICKY: u32 = 200;
/// IPaddr2's own defaults for gratuitous ARPs: (count, interval in ms).
const IPADDR2_ARP_DEFAULTS: (u32, u64) = (5, 200);

/// The commands and what they could not carry over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    /// Shell text: comments and `pcs` commands, one per line.
    pub commands: String,
    /// Left out or changed (also in `commands` as comments).
    pub findings: Findings,
}

/// The `pcs` commands for `config`, read from `source` (module docs).
pub fn export_pacemaker(config: &Config, source: &Path) -> Export {
    let mut found = Findings::default();
    let [a, b] = &config.pair.nodes;
    let named = config.has_group_lines();
    let ids: Vec<String> = if named {
        config.groups.iter().map(|g| group_id(&g.name)).collect()
    } else {
        vec![GROUP.to_string()]
    };
    let what = if named { format!("groups {}", ids.join(", ")) } else { "group".to_string() };
    let mut out = format!(
        "# pcs commands that recreate the hapair {what} of {} on a Pacemaker/Corosync\n\
         # cluster of {a} and {b} (e.g. after `pcs cluster setup {GROUP} {a} {b}` and\n\
         # `pcs cluster start --all`). Review them before running them on one node.\n",
        one_line(&source.display().to_string())
    );
    defaults(config, &mut out);
    for (g, gid) in config.groups.iter().zip(&ids) {
        let group = PcsGroup { gid, ids: &ids, named };
        group_commands(config, g, &group, &mut out, &mut found);
    }
    fence(config, &mut out, &mut found);
    Export { commands: out, findings: found }
}

/// A group as Pacemaker names it.
struct PcsGroup<'a> {
    /// Its Pacemaker ID.
    gid: &'a str,
    /// Every group's ID (a resource may not take one).
    ids: &'a [String],
    /// The file has `group` lines: the group has a name of its own.
    named: bool,
}

/// The commands of one group: its resources, its location preference and, when it differs
/// from the default, its stickiness.
fn group_commands(
    config: &Config,
    g: &Group,
    group: &PcsGroup,
    out: &mut String,
    found: &mut Findings,
) {
    let gid = group.gid;
    if group.named {
        out.push_str(&format!("# Group {}, at home on {}.\n", g.name, g.home));
    }
    let interval = render_ms(config.pair.monitor_interval.total_millis());
    for (i, r) in config.resources[g.resources.clone()].iter().enumerate() {
        match resource(r, &interval, group, out, found) {
            Some(args) => out.push_str(&format!("{}\n", shell_line(&args))),
            None => exec_comment(r, i + 1, group.named.then_some(gid), out, found),
        }
    }
    out.push_str(&format!(
        "pcs constraint location {} prefers {}\n",
        sh(gid),
        sh(&format!("{}={HOME_SCORE}", g.home))
    ));
    if g.auto_failback != config.pair.auto_failback {
        let (stickiness, why) = stickiness(g.auto_failback);
        out.push_str(&format!(
            "# Group {}: auto_failback {why}.\npcs resource meta {} \
             resource-stickiness={stickiness}\n",
            g.name,
            sh(gid)
        ));
    }
}

/// The stickiness for `auto_failback`, and what it does.
fn stickiness(auto_failback: bool) -> (u32, &'static str) {
    if auto_failback {
        (0, "on: the group returns to its home node")
    } else {
        (STICKY, "off: the group stays where it runs")
    }
}

/// The Pacemaker ID of the group called `name`: the name, with `group-` before it when it does
/// not start with a letter or `_`.
fn group_id(name: &str) -> String {
    let starts_ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    if starts_ok { name.to_string() } else { format!("group-{name}") }
}

fn defaults(config: &Config, out: &mut String) {
    let limit = config.pair.restart_limit;
    let window = render_ms(limit.window.total_millis());
    out.push_str(&format!(
        "# restart_limit {} in {window}: {} restarts in place, the next failure moves the \
         group.\npcs resource defaults update migration-threshold={} failure-timeout={window}\n",
        limit.count,
        limit.count,
        u64::from(limit.count) + 1,
    ));
    let (stickiness, why) = stickiness(config.pair.auto_failback);
    out.push_str(&format!(
        "# auto_failback {why}.\npcs resource defaults update resource-stickiness={stickiness}\n"
    ));
}

/// The argv of `pcs resource create` for `r`, or `None` for an exec resource.
fn resource(
    r: &Resource,
    interval: &str,
    group: &PcsGroup,
    out: &mut String,
    found: &mut Findings,
) -> Option<Vec<String>> {
    let mut args: Vec<String> = ["pcs", "resource", "create"].map(String::from).to_vec();
    args.push(id(r, group.ids));
    match r {
        Resource::Ip(ip) => ip_args(ip, &mut args, out, found),
        Resource::Lsb { name } => args.push(format!("lsb:{name}")),
        Resource::Ocf(o) => {
            args.push(format!("ocf:{}:{}", o.provider, o.agent));
            args.extend(o.params.iter().map(|(k, v)| format!("{k}={v}")));
        }
        // A DRBD resource is a promotable clone in Pacemaker, which a group cannot hold.
        Resource::Exec(_) | Resource::Drbd { .. } => return None,
    }
    args.extend(["op", "monitor"].map(String::from));
    args.push(format!("interval={interval}"));
    args.extend(["--group".to_string(), group.gid.to_string()]);
    Some(args)
}

fn ip_args(ip: &IpResource, args: &mut Vec<String>, out: &mut String, found: &mut Findings) {
    args.push("ocf:heartbeat:IPaddr2".into());
    args.push(format!("ip={}", ip.addr));
    args.push(format!("cidr_netmask={}", ip.prefix));
    args.push(format!("nic={}", ip.dev));
    let interval_ms = ip.garp_interval.total_millis();
    if (ip.garp, interval_ms) != IPADDR2_ARP_DEFAULTS {
        args.push(format!("arp_count={}", ip.garp));
        args.push(format!("arp_interval={interval_ms}"));
    }
    if ip.garp_refresh.total_millis() != 0 {
        let what =
            format!("ip {}: garp_refresh {}", ip.name, render_ms(ip.garp_refresh.total_millis()));
        let why = "IPaddr2 repeats its ARPs only at monitor time (see its arp_count_refresh)";
        out.push_str(&format!("# NOT CONVERTED: {what}: {why}\n"));
        found.skip("resource", &what, why);
    }
}

/// The comment that stands in for an exec resource, the `position`th of its group (`group`:
/// that group's ID, when the file names its groups).
fn exec_comment(
    r: &Resource,
    position: usize,
    group: Option<&str>,
    out: &mut String,
    found: &mut Findings,
) {
    let Resource::Exec(e) = r else { return };
    let of = group.map_or("the group".to_string(), |g| format!("group {g}"));
    let what = format!("exec resource {} (position {position} of {of})", e.name);
    let why = "Pacemaker has no resource made of shell commands: wrap them in an LSB script \
               (lsb:NAME) or an OCF agent; for a long-running program use \
               ocf:heartbeat:anything binfile=PROGRAM";
    out.push_str(&format!("# NOT CONVERTED: {what}: {why}. Its commands:\n"));
    out.push_str(&format!(
        "#   start:   {}\n#   stop:    {}\n",
        one_line(&e.start),
        one_line(&e.stop)
    ));
    if let Some(m) = &e.monitor {
        out.push_str(&format!("#   monitor: {}\n", one_line(m)));
    }
    found.skip("resource", &what, why);
}

fn fence(config: &Config, out: &mut String, found: &mut Findings) {
    let (what, why) = match &config.pair.fence {
        None => {
            out.push_str(
                "# No fence is configured: Pacemaker starts no resources without fencing \
                 unless\n# `pcs property set stonith-enabled=false` (not recommended).\n",
            );
            return;
        }
        Some(Fence::Watchdog) => (
            "fence watchdog".to_string(),
            "Pacemaker's counterpart is SBD watchdog fencing: install sbd on both nodes, then \
             `pcs stonith sbd enable` and set stonith-watchdog-timeout"
                .to_string(),
        ),
        Some(Fence::Command(argv)) => match stonith(argv) {
            Ok(device) => return stonith_commands(&config.pair.nodes, argv, &device, out, found),
            Err(why) => (format!("fence {}", redacted(argv)), why),
        },
    };
    out.push_str(&format!("# NOT CONVERTED: {}: {why}\n", one_line(&what)));
    found.skip("fence", &what, &why);
}

/// A fence agent's command line as a Pacemaker stonith device.
#[derive(Debug, PartialEq, Eq)]
struct Stonith {
    /// The agent (`fence_ipmilan`).
    agent: String,
    /// Its instance attributes, in command-line order (`ip=192.0.2.31`, `lanplus=1`).
    params: Vec<(String, String)>,
    /// The command line held a password (`--password=`), which is never printed.
    password_dropped: bool,
    /// `--action=` other than `reboot`: Pacemaker's `pcmk_reboot_action`.
    reboot_action: Option<String>,
}

/// Reads `argv` as a fence-agents command (`/usr/sbin/fence_X --opt=val --flag ...`): each
/// long option becomes the parameter of the same name with `-` turned into `_` (the names
/// of the agents' metadata: `--password-script` is `password_script`), a flag `NAME=1`.
/// Anything else is refused with the reason: a program that is no agent, a short option
/// (their letters differ between agents: `-P` is `lanplus` for fence_ipmilan and
/// `snmp_priv_passwd` for others), a value in a word of its own (`--ip 192.0.2.31`: a flag
/// followed by a stray word reads the same).
fn stonith(argv: &[String]) -> Result<Stonith, String> {
    let program = argv.first().map_or("", String::as_str);
    let agent = program.rsplit('/').next().unwrap_or(program);
    let is_agent = agent.strip_prefix("fence_").is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    });
    if !is_agent {
        return Err("Pacemaker fences through stonith devices: create one with `pcs stonith \
                    create` using the fence agent (fence-agents) that does what this command \
                    does"
            .into());
    }
    let mut device = Stonith {
        agent: agent.to_string(),
        params: Vec::new(),
        password_dropped: false,
        reboot_action: None,
    };
    for word in &argv[1..] {
        let Some(option) = word.strip_prefix("--").filter(|o| !o.is_empty()) else {
            return Err(format!(
                "`{}`: only long options (--name=value, --flag) carry over as stonith \
                 parameters; write this one in that form",
                redacted(std::slice::from_ref(word))
            ));
        };
        let (name, value) = option.split_once('=').unwrap_or((option, "1"));
        let param = name.replace('-', "_");
        match param.as_str() {
            "password" | "passwd" => device.password_dropped = true,
            "action" if value == "reboot" => {}
            "action" => device.reboot_action = Some(value.to_string()),
            _ => device.params.push((param, value.to_string())),
        }
    }
    Ok(device)
}

/// One stonith device per node, each kept off the node it fences. hapair's one `fence` line
/// runs on whichever node fences and acts on its peer; a Pacemaker device instead names the
/// node it fences (`pcmk_host_list`) and may run anywhere else.
fn stonith_commands(
    nodes: &[String],
    argv: &[String],
    device: &Stonith,
    out: &mut String,
    found: &mut Findings,
) {
    let line = format!("fence {}", redacted(argv));
    out.push_str(&format!(
        "# {}\n# becomes one stonith device per node, each fencing that node (pcmk_host_list) \
         and kept\n# off it. Both get the options of hapair's line, which each node runs \
         against its peer:\n# check that ip= (or what names the fence device) reaches the \
         BMC of the node it fences.\n",
        one_line(&line)
    ));
    found.note("fence", &format!("{line}: both stonith devices get the same options"));
    password_comment(device, out, found);
    if let Some(action) = &device.reboot_action {
        out.push_str(&format!("# --action={action}: a fence does `{action}` instead of reboot.\n"));
    }
    for node in nodes {
        let id = format!("fence-{node}");
        let mut args: Vec<String> = ["pcs", "stonith", "create"].map(String::from).to_vec();
        args.push(id.clone());
        args.push(device.agent.clone());
        args.extend(device.params.iter().map(|(k, v)| format!("{k}={v}")));
        if let Some(action) = &device.reboot_action {
            args.push(format!("pcmk_reboot_action={action}"));
        }
        args.push(format!("pcmk_host_list={node}"));
        out.push_str(&format!("{}\n", shell_line(&args)));
        out.push_str(&format!("pcs constraint location {} avoids {}\n", sh(&id), sh(node)));
    }
}

/// How the device gets its password: never in clear in the commands (the CIB is readable by
/// every cluster node and its backups).
fn password_comment(device: &Stonith, out: &mut String, found: &mut Findings) {
    if let Some((_, script)) = device.params.iter().find(|(k, _)| k == "password_script") {
        out.push_str(&format!(
            "# The password is not in the commands: the agent runs password_script={}\n\
             # on the fencing node and reads it from its output; install that script (mode \
             0700)\n# on both nodes.\n",
            one_line(script)
        ));
    }
    if device.password_dropped {
        let why = "the password is not printed: give each device password_script=FILE (a \
                   script that prints it, mode 0700 on both nodes), or set it by hand with \
                   `pcs stonith update ID password=...`";
        out.push_str(&format!("# NOT CONVERTED: --password: {why}\n"));
        found.skip("fence", "--password", why);
    }
}

/// `argv` as one line for comments and findings, with what follows `--password=`,
/// `--passwd=` or `-p` shown as `...`: the output may be mailed or pasted where the
/// configuration file (root's) is not.
fn redacted(argv: &[String]) -> String {
    let mut words: Vec<String> = Vec::with_capacity(argv.len());
    let mut hide_next = false;
    for word in argv {
        let hidden = if hide_next {
            "...".to_string()
        } else if let Some((name @ ("--password" | "--passwd"), _)) = word.split_once('=') {
            format!("{name}=...")
        } else if word.starts_with("-p") && word.len() > 2 && !word.starts_with("--") {
            "-p...".to_string()
        } else {
            word.clone()
        };
        hide_next = word == "-p";
        words.push(hidden);
    }
    words.join(" ")
}

/// The Pacemaker ID of `r`: its name, prefixed by its kind when it does not start with a
/// letter or `_`, or when it is a group's ID (`groups`).
fn id(r: &Resource, groups: &[String]) -> String {
    let name = r.name();
    let starts_ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    if starts_ok && !groups.iter().any(|g| g == name) {
        name.to_string()
    } else {
        format!("{}-{name}", r.kind())
    }
}

/// `args` as one shell command line.
fn shell_line(args: &[String]) -> String {
    args.iter().map(|a| sh(a)).collect::<Vec<_>>().join(" ")
}

/// `word` quoted for a POSIX shell: bare when it is made of safe characters only, else in
/// single quotes (a single quote inside becomes `'\''`).
fn sh(word: &str) -> String {
    let safe = !word.is_empty()
        && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"_./:=@%+,-".contains(&b));
    if safe { word.to_string() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "node alpha\nnode beta\nauthkey /etc/hapair/authkey\nbcast eth1\n";

    fn export(extra: &str) -> Export {
        let text = format!("{BASE}{extra}");
        let config = crate::config::parse_str(&text, Path::new("/etc/hapair/hapair.conf"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        export_pacemaker(&config, Path::new("/etc/hapair/hapair.conf"))
    }

    /// The command lines (comments left out).
    fn commands(e: &Export) -> Vec<&str> {
        e.commands.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn table_of_configurations() {
        let defaults_off = [
            "pcs resource defaults update migration-threshold=4 failure-timeout=600s",
            "pcs resource defaults update resource-stickiness=200",
        ];
        let cases: &[(&str, &[&str])] = &[
            ("", &["pcs constraint location hapair prefers alpha=100"]),
            (
                "home beta\nauto_failback on\nrestart_limit 0 in 90s\nmonitor_interval 1500ms\n\
                 resource lsb apache2\n",
                &[
                    "pcs resource defaults update migration-threshold=1 failure-timeout=90s",
                    "pcs resource defaults update resource-stickiness=0",
                    "pcs resource create apache2 lsb:apache2 op monitor interval=1500ms \
                     --group hapair",
                    "pcs constraint location hapair prefers beta=100",
                ],
            ),
            (
                "resource ip 192.0.2.100/24 dev eth0\n\
                 resource ip 2001:db8::5/64 dev eth0 garp 2 garp_interval 1s name v6\n\
                 resource ocf heartbeat:Filesystem device=/dev/md0 directory=/srv fstype=ext4\n\
                 resource ocf heartbeat:anything name hapair binfile=\"/usr/bin/my d\" \
                 cmdline_options=\"it's\"\n\
                 resource lsb apache2\n",
                &[
                    "pcs resource create ip-192.0.2.100 ocf:heartbeat:IPaddr2 ip=192.0.2.100 \
                     cidr_netmask=24 nic=eth0 op monitor interval=5s --group hapair",
                    "pcs resource create v6 ocf:heartbeat:IPaddr2 ip=2001:db8::5 cidr_netmask=64 \
                     nic=eth0 arp_count=2 arp_interval=1000 op monitor interval=5s --group hapair",
                    "pcs resource create Filesystem ocf:heartbeat:Filesystem device=/dev/md0 \
                     directory=/srv fstype=ext4 op monitor interval=5s --group hapair",
                    "pcs resource create ocf-hapair ocf:heartbeat:anything 'binfile=/usr/bin/my d' \
                     'cmdline_options=it'\\''s' op monitor interval=5s --group hapair",
                    "pcs resource create apache2 lsb:apache2 op monitor interval=5s \
                     --group hapair",
                    "pcs constraint location hapair prefers alpha=100",
                ],
            ),
        ];
        for (extra, expected) in cases {
            let e = export(extra);
            let mut want: Vec<&str> = Vec::new();
            if !extra.contains("auto_failback on") {
                want.extend(defaults_off);
            }
            want.extend(expected.iter());
            assert_eq!(commands(&e), want, "{extra}");
            assert!(e.commands.contains("# No fence is configured"), "{}", e.commands);
            assert_eq!(e.findings, Findings::default());
        }
    }

    /// SPEC §7.1: one Pacemaker group per group, each preferring its own home; a group whose
    /// auto_failback differs from the default gets its own stickiness; IDs stay unique.
    #[test]
    fn one_pcs_group_per_group() {
        let e = export(
            "home alpha\ngroup web\nresource ip 192.0.2.100/24 dev eth0\nresource lsb db\n\
             resource exec x start=a stop=b\n\
             group db home beta auto_failback on\nresource ip 192.0.2.101/24 dev eth0\n\
             resource lsb web\ngroup 2nd\nresource lsb mail\n",
        );
        assert_eq!(
            commands(&e),
            [
                "pcs resource defaults update migration-threshold=4 failure-timeout=600s",
                "pcs resource defaults update resource-stickiness=200",
                "pcs resource create ip-192.0.2.100 ocf:heartbeat:IPaddr2 ip=192.0.2.100 \
                 cidr_netmask=24 nic=eth0 op monitor interval=5s --group web",
                "pcs resource create lsb-db lsb:db op monitor interval=5s --group web",
                "pcs constraint location web prefers alpha=100",
                "pcs resource create ip-192.0.2.101 ocf:heartbeat:IPaddr2 ip=192.0.2.101 \
                 cidr_netmask=24 nic=eth0 op monitor interval=5s --group db",
                "pcs resource create lsb-web lsb:web op monitor interval=5s --group db",
                "pcs constraint location db prefers beta=100",
                "pcs resource meta db resource-stickiness=0",
                "pcs resource create mail lsb:mail op monitor interval=5s --group group-2nd",
                "pcs constraint location group-2nd prefers alpha=100",
            ]
        );
        let c = &e.commands;
        assert!(
            c.starts_with("# pcs commands that recreate the hapair groups web, db, group-2nd of")
        );
        assert!(c.contains("\n# Group db, at home on beta.\n"), "{c}");
        assert!(
            c.contains("\n# Group db: auto_failback on: the group returns to its home node.\n")
        );
        assert!(c.contains("# NOT CONVERTED: exec resource x (position 3 of group web)"), "{c}");
        // A lone `group main` without options is no group line: today's one group `hapair`.
        let e = export("group main\nresource lsb apache2\n");
        assert!(commands(&e).contains(&"pcs constraint location hapair prefers alpha=100"));
        assert!(!e.commands.contains("# Group"), "{}", e.commands);
    }

    #[test]
    fn exec_garp_refresh_and_fence_are_listed() {
        let e = export(
            "resource ip 192.0.2.1/24 dev eth0 garp_refresh 30s\n\
             resource exec web start=\"systemctl start nginx\" stop=\"systemctl stop nginx\" \
             monitor=\"curl -fs http://127.0.0.1/\"\nresource lsb db\n\
             watchdog /dev/watchdog\nfence watchdog\n",
        );
        let c = &e.commands;
        assert!(c.contains("# NOT CONVERTED: ip 192.0.2.1: garp_refresh 30s: IPaddr2"), "{c}");
        assert!(
            c.contains(
                "# NOT CONVERTED: exec resource web (position 2 of the group): \
                            Pacemaker has no resource made of shell commands"
            ),
            "{c}"
        );
        assert!(c.contains("ocf:heartbeat:anything binfile=PROGRAM"), "{c}");
        assert!(
            c.contains(
                "#   start:   systemctl start nginx\n#   stop:    systemctl stop \
                            nginx\n#   monitor: curl -fs http://127.0.0.1/\n"
            ),
            "{c}"
        );
        assert!(c.contains("# NOT CONVERTED: fence watchdog: Pacemaker's counterpart is SBD"));
        let creates: Vec<&str> =
            commands(&e).into_iter().filter(|l| l.starts_with("pcs resource create")).collect();
        assert_eq!(creates.len(), 2);
        assert!(creates[1].starts_with("pcs resource create db lsb:db"));
        assert_eq!(e.findings.not_converted.len(), 3, "{:?}", e.findings);
        let e = export("fence /usr/local/sbin/kill-peer --hard\n");
        assert!(e.commands.contains(
            "# NOT CONVERTED: fence /usr/local/sbin/kill-peer --hard: \
                                     Pacemaker fences through stonith devices"
        ));
    }

    #[test]
    fn a_fence_agent_becomes_one_stonith_device_per_node() {
        let e = export(
            "fence /usr/sbin/fence_ipmilan --ip=203.0.113.2 --username=admin \
             --password-script=/etc/hapair/bmc-password --lanplus --cipher=3\n",
        );
        let device = "fence_ipmilan ip=203.0.113.2 username=admin \
                      password_script=/etc/hapair/bmc-password lanplus=1 cipher=3";
        let stonith: Vec<&str> = commands(&e)
            .into_iter()
            .filter(|l| l.contains("stonith") || l.contains("avoids"))
            .collect();
        assert_eq!(
            stonith,
            [
                format!("pcs stonith create fence-alpha {device} pcmk_host_list=alpha"),
                "pcs constraint location fence-alpha avoids alpha".to_string(),
                format!("pcs stonith create fence-beta {device} pcmk_host_list=beta"),
                "pcs constraint location fence-beta avoids beta".to_string(),
            ]
        );
        let c = &e.commands;
        assert!(c.contains("# The password is not in the commands: the agent runs"), "{c}");
        assert!(c.contains("# check that ip= (or what names the fence device) reaches"), "{c}");
        assert!(!c.contains("NOT CONVERTED"), "{c}");
        assert!(e.findings.not_converted.is_empty(), "{:?}", e.findings);
        assert_eq!(e.findings.notes.len(), 1, "{:?}", e.findings);
    }

    #[test]
    fn a_password_in_clear_is_never_printed() {
        let e = export(
            "fence /usr/sbin/fence_ipmilan --ip=bmc-peer --username=admin --password=s3cr'et \
             --action=off --lanplus\n",
        );
        let c = &e.commands;
        assert!(!c.contains("s3cr"), "{c}");
        assert!(!format!("{:?}", e.findings).contains("s3cr"), "{:?}", e.findings);
        assert!(
            c.contains(
                "pcs stonith create fence-alpha fence_ipmilan ip=bmc-peer username=admin \
                 lanplus=1 pcmk_reboot_action=off pcmk_host_list=alpha\n"
            ),
            "{c}"
        );
        assert!(c.contains("# NOT CONVERTED: --password: the password is not printed"), "{c}");
        assert!(c.contains("--username=admin --password=... --action=off"), "{c}");
        assert_eq!(e.findings.not_converted.len(), 1, "{:?}", e.findings);
        // Neither in a line that is not converted.
        for line in
            ["fence_ipmilan -p s3cret --ip=x", "fence_ipmilan -ps3cret", "fence_x --passwd=s3cret"]
        {
            let e = export(&format!("fence /usr/sbin/{line}\n"));
            assert!(!e.commands.contains("s3cret"), "{}", e.commands);
            assert!(!format!("{:?}", e.findings).contains("s3cret"), "{:?}", e.findings);
        }
    }

    #[test]
    fn fence_commands_that_are_not_converted() {
        let cases = [
            ("/usr/sbin/fence_ipmilan -a 192.0.2.9", "`-a`: only long options"),
            ("/usr/sbin/fence_ipmilan --ip 192.0.2.9", "`192.0.2.9`: only long options"),
            ("/usr/sbin/fence_ipmilan --ip=192.0.2.9 --", "`--`: only long options"),
            ("/usr/sbin/fence_", "Pacemaker fences through stonith devices"),
            ("/usr/sbin/fence_x.sh", "Pacemaker fences through stonith devices"),
            ("/bin/true", "Pacemaker fences through stonith devices"),
        ];
        for (line, why) in cases {
            let e = export(&format!("fence {line}\n"));
            let c = &e.commands;
            assert!(c.contains(&format!("# NOT CONVERTED: fence {line}: {why}")), "{c}");
            assert!(!c.contains("\npcs stonith"), "{c}");
            assert_eq!(e.findings.not_converted.len(), 1, "{line}: {:?}", e.findings);
        }
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(sh("ip=192.0.2.1"), "ip=192.0.2.1");
        assert_eq!(sh("a b"), "'a b'");
        assert_eq!(sh("it's"), r"'it'\''s'");
        assert_eq!(sh(""), "''");
        assert_eq!(sh("$(x)"), "'$(x)'");
    }
}
