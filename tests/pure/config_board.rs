//! Every example in board/ passes the real `hapair check` with a test key supplied by a kernel
//! flag, `check --print` shows the kernel-flag overrides, and the printed configuration is
//! itself a valid configuration that prints the same.

use crate::common::TempDir;
use crate::common::bin::*;

/// The board's cmdline for `node`, plus `hapair.authkey=` pointing at a fresh 0600 key.
fn cmdline_with_key(dir: &TempDir, board_cmdline: &str) -> String {
    let key = dir.write_mode("authkey", KEY, 0o600);
    let base = std::fs::read_to_string(board_cmdline).unwrap();
    let p = dir.write("cmdline", &format!("{} hapair.authkey={}\n", base.trim(), s(&key)));
    s(&p).to_string()
}

/// A copy of the board file `path` in `dir`, root's and mode 0644: `check` refuses a
/// configuration that is not root's or that others may write (SPEC §7.3), and a checkout may
/// be a user's.
fn board(dir: &TempDir, path: &str) -> String {
    let name = path.replace('/', "-");
    let p = dir.join(&name);
    std::fs::copy(path, &p).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    s(&p).to_string()
}

fn check_print(config: &str, cmdline: &str) -> String {
    // The PC pair's agents (apache2's init script) live on those PCs, not on the test
    // machine: configurations are printed offline, where a missing agent is only a warning.
    // (The lab test below also runs the full, online check.)
    let out = hapair(&["check", "-c", config, "--cmdline", cmdline, "--print", "--offline"]);
    assert_eq!(out.status.code(), Some(0), "{config} {cmdline}: {}", stderr(&out));
    stdout(&out)
}

fn digest_of(print: &str) -> &str {
    print.lines().next().unwrap().rsplit(' ').next().unwrap()
}

#[test]
fn lab_configs_pass_check_with_per_node_overrides() {
    let mut digests = Vec::new();
    for node in ["alpha", "beta"] {
        let dir = TempDir::new("board-lab");
        let cmdline = cmdline_with_key(&dir, &format!("board/lab/{node}.cmdline"));
        let conf = board(&dir, "board/lab/hapair.conf");
        let out = hapair(&["check", "-c", &conf, "--cmdline", &cmdline]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(stdout(&out).contains(&format!("node {node}")), "{}", stdout(&out));

        let print = check_print(&conf, &cmdline);
        assert!(print.starts_with("# effective configuration"), "{print}");
        assert!(print.contains(&format!("for node {node} ")), "{print}");
        assert!(print.contains(&format!("\nserial /run/hapair-lab/{node}.tty baud 115200\n")));
        assert!(!print.contains("/dev/ttyS0"), "the file's serial line is replaced: {print}");
        assert!(print.contains(&format!("\ncontrol /run/hapair-lab/{node}.sock\n")), "{print}");
        assert!(print.contains(&format!("\nstatedir /run/hapair-lab/{node}\n")), "{print}");
        assert!(print.contains(&format!("\nauthkey {}\n", s(&dir.join("authkey")))), "{print}");
        // Defaults are written out.
        assert!(print.contains("\nudpport 694\n") && print.contains("\nrealtime off\n"));
        digests.push(digest_of(&print).to_string());
    }
    assert_eq!(digests[0], digests[1], "per-node flags must not change the shared digest");
}

#[test]
fn pc_pair_config_passes_check_on_both_nodes() {
    for node in ["alpha", "beta"] {
        let dir = TempDir::new("board-pc");
        let cmdline = cmdline_with_key(&dir, &format!("board/pc-pair/{node}.cmdline"));
        let print = check_print(&board(&dir, "board/pc-pair/hapair.conf"), &cmdline);
        assert!(print.contains(&format!("for node {node} ")), "{print}");
        assert!(print.contains("\nfence watchdog\n") && print.contains("\nhwmon lm78 root"));
    }
}

/// SPEC §7.1: the active/active example passes on both nodes with one digest; its group lines
/// are printed before their resources, with every option.
#[test]
fn pc_pair_active_active_config_passes_check_on_both_nodes() {
    let mut digests = Vec::new();
    for node in ["alpha", "beta"] {
        let dir = TempDir::new("board-pc-aa");
        let cmdline = cmdline_with_key(&dir, &format!("board/pc-pair/{node}.cmdline"));
        let print = check_print(&board(&dir, "board/pc-pair/active-active.conf"), &cmdline);
        assert!(print.contains(&format!("for node {node} ")), "{print}");
        let groups: Vec<&str> = print.lines().filter(|l| l.starts_with("group ")).collect();
        assert_eq!(
            groups,
            ["group web home alpha auto_failback off", "group db home beta auto_failback on"]
        );
        assert!(
            print.contains("\ngroup db home beta auto_failback on\nresource ip 192.0.2.101/24")
        );
        digests.push(digest_of(&print).to_string());
    }
    assert_eq!(digests[0], digests[1]);
    let config = std::fs::read_to_string("board/pc-pair/active-active.conf").unwrap();
    let c = hapair::config::parse_str(&config, std::path::Path::new("active-active.conf")).unwrap();
    let names: Vec<&str> = c.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        (names, c.groups[0].resources.clone(), c.groups[1].resources.clone()),
        (vec!["web", "db"], 0..2, 2..4)
    );
}

/// SPEC §7.1: the lab's active/active pairs (`scripts/demo.sh --active-active` and the
/// active/active benchmark, board/lab/active-active.conf and active-active-fast.conf) pass the
/// full check on both nodes with one digest: web with 192.0.2.100 at home on alpha, db with
/// 192.0.2.101 at home on beta, both failing back.
#[test]
fn lab_active_active_configs_pass_check_on_both_nodes() {
    for (file, keepalive) in
        [("board/lab/active-active.conf", "100ms"), ("board/lab/active-active-fast.conf", "10ms")]
    {
        let mut digests = Vec::new();
        for node in ["alpha", "beta"] {
            let dir = TempDir::new("board-lab-aa");
            let cmdline = cmdline_with_key(&dir, &format!("board/lab/{node}.cmdline"));
            let conf = board(&dir, file);
            let out = hapair(&["check", "-c", &conf, "--cmdline", &cmdline]);
            assert_eq!(out.status.code(), Some(0), "{file} {node}: {}", stderr(&out));
            assert!(stdout(&out).contains(&format!("node {node}")), "{}", stdout(&out));

            let print = check_print(&conf, &cmdline);
            assert!(print.contains(&format!("for node {node} ")), "{print}");
            assert!(
                print.contains(&format!(
                    "
keepalive {keepalive}
"
                )),
                "{print}"
            );
            let groups: Vec<&str> = print.lines().filter(|l| l.starts_with("group ")).collect();
            assert_eq!(
                groups,
                ["group web home alpha auto_failback on", "group db home beta auto_failback on"],
                "{file}"
            );
            for (group, vip) in [("web home alpha", "100"), ("db home beta", "101")] {
                let lines = format!(
                    "\ngroup {group} auto_failback on\nresource ip 192.0.2.{vip}/24 dev lan0 "
                );
                assert!(print.contains(&lines), "{file}: {print}");
            }
            digests.push(digest_of(&print).to_string());
        }
        assert_eq!(digests[0], digests[1], "{file}: per-node flags must not change the digest");
        let config = std::fs::read_to_string(file).unwrap();
        let c = hapair::config::parse_str(&config, std::path::Path::new(file)).unwrap();
        let groups: Vec<_> =
            c.groups.iter().map(|g| (g.name.as_str(), g.resources.clone())).collect();
        assert_eq!(groups, [("web", 0..1), ("db", 1..2)], "{file}");
    }
}

/// SPEC §7.7: the lab's IPv6 configuration (IPv6 multicast heartbeats on the LAN, an IPv6
/// ping node, the IPv6 VIP) passes the full check on both nodes with one digest, and prints
/// its IPv6 lines as written.
#[test]
fn lab_v6_config_passes_check_on_both_nodes() {
    let mut digests = Vec::new();
    for node in ["alpha", "beta"] {
        let dir = TempDir::new("board-lab-v6");
        let cmdline = cmdline_with_key(&dir, &format!("board/lab/{node}.cmdline"));
        let conf = board(&dir, "board/lab/v6.conf");
        let out = hapair(&["check", "-c", &conf, "--cmdline", &cmdline]);
        assert_eq!(out.status.code(), Some(0), "{node}: {}", stderr(&out));
        let print = check_print(&conf, &cmdline);
        for line in [
            "\nmcast lan0 ff02::1:694 ttl 1\n",
            "\nping 2001:db8::10\n",
            "\nresource ip 2001:db8::100/64 dev lan0 ",
        ] {
            assert!(print.contains(line), "{line:?} missing: {print}");
        }
        assert!(!print.contains("\nbcast "), "{print}");
        digests.push(digest_of(&print).to_string());
    }
    assert_eq!(digests[0], digests[1], "per-node flags must not change the shared digest");
}

#[test]
fn kernel_flags_override_timings_and_boot_flags() {
    let dir = TempDir::new("board-flags");
    let key = dir.write_mode("authkey", KEY, 0o600);
    let cmdline = dir.write(
        "cmdline",
        &format!(
            "ro hapair.node=beta hapair.standby=1 hapair.deadtime=2s \
             hapair.restart_limit=\"5 in 1m\" hapair.authkey={}\n",
            s(&key)
        ),
    );
    let print = check_print(&board(&dir, "board/pc-pair/hapair.conf"), s(&cmdline));
    assert!(print.contains("for node beta (standby=1, disable=0)"), "{print}");
    assert!(print.contains("\ndeadtime 2s\n") && print.contains("\nrestart_limit 5 in 1m\n"));
}

#[test]
fn printed_configuration_is_valid_and_prints_the_same() {
    for (conf, cmd) in [
        ("board/lab/hapair.conf", "board/lab/alpha.cmdline"),
        ("board/lab/active-active.conf", "board/lab/beta.cmdline"),
        ("board/pc-pair/hapair.conf", "board/pc-pair/beta.cmdline"),
        ("board/pc-pair/active-active.conf", "board/pc-pair/alpha.cmdline"),
    ] {
        let dir = TempDir::new("board-reprint");
        let cmdline = cmdline_with_key(&dir, cmd);
        let first = check_print(&board(&dir, conf), &cmdline);
        let printed = dir.write("printed.conf", &first);
        // The printed file already has every override applied: only the node is still needed.
        let node = if cmd.contains("alpha") { "alpha" } else { "beta" };
        let node_only = dir.write("node.cmdline", &format!("hapair.node={node}\n"));
        let second = check_print(s(&printed), s(&node_only));
        let body = |t: &str| t.split_once('\n').unwrap().1.to_string();
        assert_eq!(body(&first), body(&second));
        assert_eq!(digest_of(&first), digest_of(&second));
    }
}

#[test]
fn readme_configuration_example_is_valid() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let (_, after) = readme.split_once("## A configuration").unwrap();
    let (_, block) = after.split_once("```\n").unwrap();
    let (example, _) = block.split_once("```").unwrap();
    let c = hapair::config::parse_str(example, std::path::Path::new("README.md")).unwrap();
    assert_eq!(c.pair.nodes, ["alpha", "beta"]);
    assert_eq!(c.resources.len(), 2);
}
