//! `hapair export-pacemaker` through the real binary: the pcs commands on stdout, exec
//! resources and fencing listed on stderr, a bad configuration refused with exit 1. The
//! exact lines for a table of configurations are unit tests in src/migrate/pacemaker.rs.

use crate::common::TempDir;
use crate::common::bin::*;

#[test]
fn prints_pcs_commands_and_lists_what_it_cannot_convert() {
    let dir = TempDir::new("export");
    let conf = dir.write(
        "hapair.conf",
        "node alpha\nnode beta\nauthkey /etc/hapair/authkey\nbcast eth1\n\
         resource ip 192.0.2.100/24 dev eth0\n\
         resource exec web start=\"systemctl start nginx\" stop=\"systemctl stop nginx\"\n\
         resource lsb apache2\nfence /usr/sbin/fence_x -n beta\n",
    );
    let cmdline = dir.write("cmdline", "quiet\n");
    let out = hapair(&["export-pacemaker", "-c", s(&conf), "--cmdline", s(&cmdline)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let commands: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        commands,
        [
            "pcs resource defaults update migration-threshold=4 failure-timeout=600s",
            "pcs resource defaults update resource-stickiness=200",
            "pcs resource create ip-192.0.2.100 ocf:heartbeat:IPaddr2 ip=192.0.2.100 \
             cidr_netmask=24 nic=eth0 op monitor interval=5s --group hapair",
            "pcs resource create apache2 lsb:apache2 op monitor interval=5s --group hapair",
            "pcs constraint location hapair prefers alpha=100",
        ]
    );
    let err = stderr(&out);
    assert!(err.contains("NOT CONVERTED: resource: exec resource web (position 2"), "{err}");
    assert!(err.contains("NOT CONVERTED: fence: fence /usr/sbin/fence_x -n beta"), "{err}");
    assert!(text.contains("# NOT CONVERTED: exec resource web"), "{text}");
}

#[test]
fn an_invalid_configuration_exits_1() {
    let dir = TempDir::new("export-bad");
    let conf = dir.write("hapair.conf", "node alpha\n");
    let cmdline = dir.write("cmdline", "\n");
    let out = hapair(&["export-pacemaker", "-c", s(&conf), "--cmdline", s(&cmdline)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
    assert!(stderr(&out).contains(s(&conf)), "{}", stderr(&out));
}

/// SPEC §7.1: one `pcs` group per group, named by it, each with a location preference for
/// its own home, and its own stickiness where its auto_failback is not the default's.
#[test]
fn prints_one_pcs_group_per_group() {
    let dir = TempDir::new("export-groups");
    let conf = dir.write(
        "hapair.conf",
        "node alpha\nnode beta\nauthkey /etc/hapair/authkey\nbcast eth1\n\
         group web\nresource ip 192.0.2.100/24 dev eth0\nresource lsb apache2\n\
         group db home beta auto_failback on\nresource ip 192.0.2.101/24 dev eth0\n\
         resource lsb postgresql\n",
    );
    let cmdline = dir.write("cmdline", "quiet\n");
    let out = hapair(&["export-pacemaker", "-c", s(&conf), "--cmdline", s(&cmdline)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let commands: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        commands,
        [
            "pcs resource defaults update migration-threshold=4 failure-timeout=600s",
            "pcs resource defaults update resource-stickiness=200",
            "pcs resource create ip-192.0.2.100 ocf:heartbeat:IPaddr2 ip=192.0.2.100 \
             cidr_netmask=24 nic=eth0 op monitor interval=5s --group web",
            "pcs resource create apache2 lsb:apache2 op monitor interval=5s --group web",
            "pcs constraint location web prefers alpha=100",
            "pcs resource create ip-192.0.2.101 ocf:heartbeat:IPaddr2 ip=192.0.2.101 \
             cidr_netmask=24 nic=eth0 op monitor interval=5s --group db",
            "pcs resource create postgresql lsb:postgresql op monitor interval=5s --group db",
            "pcs constraint location db prefers beta=100",
            "pcs resource meta db resource-stickiness=0",
        ]
    );
    assert!(text.contains("recreate the hapair groups web, db of"), "{text}");
    // The board's active/active example exports too.
    let board = format!("{}/board/pc-pair/active-active.conf", env!("CARGO_MANIFEST_DIR"));
    let out = hapair(&["export-pacemaker", "-c", &board, "--cmdline", s(&cmdline)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("\npcs constraint location web prefers alpha=100\n"), "{text}");
    assert!(text.contains("\npcs constraint location db prefers beta=100\n"), "{text}");
}
