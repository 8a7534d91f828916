//! `resource drbd RES` (SPEC §7.5) through the real `hapair check`: it parses, `check --print`
//! renders it as written (and the printed configuration reads back the same), and a line
//! without a name, with a bad name or with a word too many is refused with its FILE:LINE.
//!
//! Not here: what the resource does (tests/daemon/e2e_drbd.rs, with a stand-in `drbdadm`).

use crate::common::TempDir;
use crate::common::bin::*;

/// A valid configuration with `resource` as its line 5.
fn conf_text(key: &str, resource: &str) -> String {
    format!(
        "node alpha\nnode beta\nauthkey {key}\nbcast eth1\n{resource}\n\
         resource exec svc start=/bin/true stop=/bin/true\n"
    )
}

/// A fresh directory holding a key, a configuration with `resource` as its line 5 and a
/// kernel command line naming alpha; the configuration's and the command line's paths.
fn setup(tag: &str, resource: &str) -> (TempDir, String, String) {
    let dir = TempDir::new(tag);
    let key = dir.write_mode("authkey", KEY, 0o600);
    let conf = s(&dir.write("hapair.conf", &conf_text(s(&key), resource))).to_owned();
    let cmdline = s(&dir.write("cmdline", "hapair.node=alpha\n")).to_owned();
    (dir, conf, cmdline)
}

/// `hapair check -c CONF --cmdline CMDLINE ARGS`.
fn check(conf: &str, cmdline: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["check", "-c", conf, "--cmdline", cmdline];
    all.extend_from_slice(args);
    hapair(&all)
}

#[test]
fn a_drbd_resource_parses_and_prints_as_written() {
    let (dir, conf, cmdline) = setup("drbd-ok", "resource drbd r0");
    let out = check(&conf, &cmdline, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = check(&conf, &cmdline, &["--print"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let print = stdout(&out);
    let resources: Vec<&str> = print.lines().filter(|l| l.starts_with("resource ")).collect();
    assert_eq!(resources.first(), Some(&"resource drbd r0"), "in order, as written: {print}");
    // The printed configuration is one: it reads back and prints the same resource line.
    let printed = dir.write("printed.conf", &print);
    let again = check(s(&printed), &cmdline, &["--print"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(stdout(&again).lines().any(|l| l == "resource drbd r0"), "{}", stdout(&again));
}

#[test]
fn a_drbd_resource_without_a_good_name_is_refused_at_its_line() {
    let cases = [
        ("resource drbd", "missing DRBD resource name"),
        ("resource drbd r/0", "bad drbd resource name \"r/0\""),
        ("resource drbd .r0", "bad drbd resource name \".r0\""),
        ("resource drbd r0 extra", "unexpected \"extra\""),
    ];
    for (line, says) in cases {
        let (_dir, conf, cmdline) = setup("drbd-bad", line);
        let out = check(&conf, &cmdline, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{line:?}: {err}");
        assert!(err.starts_with(&format!("{conf}:5: ")), "{line:?}: FILE:LINE first: {err}");
        assert!(err.contains(says), "{line:?}: want {says:?} in {err}");
        assert!(!err.contains("panicked"), "{line:?}: {err}");
    }
}
