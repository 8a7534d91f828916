//! DRBD's side of the machine (SPEC §7.5): `/proc/drbd` read into a fixed buffer (the loop,
//! every second), the resource's minor asked of `drbdadm` once at start, and the `drbd`
//! resource agent, `hapair drbd-agent start|stop|monitor RES`: a child of the daemon like any
//! agent, which runs `drbdadm` and exits with OCF codes. What the outputs mean is
//! `crate::drbd`'s to judge.

use crate::drbd::{self, Role};
use std::fs::File;
use std::io::Read;
use std::process::{Command, Stdio};

/// Where the kernel's DRBD 8.4 module reports every minor.
pub const PROC_DRBD: &str = "/proc/drbd";
/// The bytes of `/proc/drbd` read (a few lines per minor: ample for the resources a pair has).
pub const PROC_LEN_MAX: usize = 8192;

/// Reads `path` (`/proc/drbd`) into `buf`; the text read, empty when the module is not loaded.
/// No allocation: the path is short (std puts it on the stack) and `buf` is the caller's.
pub fn read_proc<'a>(path: &str, buf: &'a mut [u8; PROC_LEN_MAX]) -> &'a str {
    let Ok(mut file) = File::open(path) else { return "" };
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    // A multi-byte character cut at the end is dropped (DRBD writes ASCII).
    match core::str::from_utf8(&buf[..len]) {
        Ok(text) => text,
        Err(e) => core::str::from_utf8(&buf[..e.valid_up_to()]).unwrap_or(""),
    }
}

/// The minor of resource `res` (`drbdadm sh-minor RES`), run once at start; an error names
/// what failed, for the log (the resource then counts as not up).
pub fn minor_of(res: &str) -> Result<u32, String> {
    let out = Command::new("drbdadm")
        .args(["sh-minor", res])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("drbdadm sh-minor {res}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("drbdadm sh-minor {res}: {} {}", out.status, err.trim()));
    }
    text.trim().parse().map_err(|_| format!("drbdadm sh-minor {res} printed {:?}", text.trim()))
}

/// OCF exit codes the agent uses.
mod ocf {
    pub const SUCCESS: i32 = 0;
    pub const ERR_GENERIC: i32 = 1;
    pub const ERR_ARGS: i32 = 2;
    pub const ERR_INSTALLED: i32 = 5;
    pub const NOT_RUNNING: i32 = 7;
}

/// `drbdadm ARGS RES`: its stdout, or why it failed.
fn drbdadm(args: &[&str], res: &str) -> Result<String, (i32, String)> {
    let out = Command::new("drbdadm").args(args).arg(res).stdin(Stdio::null()).output();
    let out = out.map_err(|e| (ocf::ERR_INSTALLED, format!("drbdadm: {e}")))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err((
        ocf::ERR_GENERIC,
        format!("drbdadm {} {res}: {} {}", args.join(" "), out.status, err.trim()),
    ))
}

/// The resource as `drbdadm role` and `dstate` print it; a resource that is not up reads as
/// unknown (its `role` fails).
fn state(res: &str) -> Result<(Role, Role, drbd::Disk, drbd::Disk), (i32, String)> {
    let role = drbdadm(&["role"], res)?;
    let dstate = drbdadm(&["dstate"], res)?;
    Ok(drbd::parse_pair(&role, &dstate))
}

/// `hapair drbd-agent ACTION RES`: the `drbd` resource's agent (OCF exit codes, a line on
/// stderr for the daemon's log). start promotes when `drbd::may_promote` allows it (refused
/// otherwise: the group does not start on stale data); stop demotes (a resource not up is
/// stopped); monitor is running when Primary here.
pub fn agent_main(action: &str, res: &str) -> i32 {
    match action {
        "monitor" => match state(res) {
            Ok((Role::Primary, ..)) => ocf::SUCCESS,
            Ok(_) => ocf::NOT_RUNNING,
            Err((code, msg)) if code == ocf::ERR_INSTALLED => fail(code, &msg),
            // Not up: not running.
            Err(_) => ocf::NOT_RUNNING,
        },
        "start" => {
            let (role, peer_role, disk, _) = match state(res) {
                Ok(s) => s,
                Err((code, msg)) => return fail(code, &msg),
            };
            if let Err(refusal) = drbd::may_promote(role, peer_role, disk) {
                return fail(ocf::ERR_GENERIC, &format!("drbd {res}: not promoted: {refusal}"));
            }
            if role == Role::Primary {
                return ocf::SUCCESS;
            }
            match drbdadm(&["primary"], res) {
                Ok(_) => ocf::SUCCESS,
                Err((code, msg)) => fail(code, &msg),
            }
        }
        "stop" => match state(res) {
            Ok((Role::Primary, ..)) => match drbdadm(&["secondary"], res) {
                Ok(_) => ocf::SUCCESS,
                Err((code, msg)) => fail(code, &msg),
            },
            Ok(_) => ocf::SUCCESS,
            Err((code, msg)) if code == ocf::ERR_INSTALLED => fail(code, &msg),
            Err(_) => ocf::SUCCESS,
        },
        _ => fail(ocf::ERR_ARGS, &format!("drbd-agent: unknown action {action:?}")),
    }
}

fn fail(code: i32, msg: &str) -> i32 {
    eprintln!("{msg}");
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn proc_text_is_read_whole_and_a_missing_file_is_empty() {
        let dir = TempDir::new("drbdproc");
        let path = dir.path().join("drbd");
        std::fs::write(&path, "version: 8.4.11\n 0: cs:Connected ro:Primary/Secondary\n").unwrap();
        let mut buf = [0u8; PROC_LEN_MAX];
        let text = read_proc(path.to_str().unwrap(), &mut buf);
        assert!(text.ends_with("ro:Primary/Secondary\n"));
        assert_eq!(read_proc("/nonexistent/drbd", &mut buf), "");
        // Longer than the buffer: the head is kept, nothing panics; a cut character is dropped.
        let mut long = vec![b'x'; PROC_LEN_MAX - 1];
        long.extend_from_slice("é and more".as_bytes());
        std::fs::write(&path, &long).unwrap();
        assert_eq!(read_proc(path.to_str().unwrap(), &mut buf).len(), PROC_LEN_MAX - 1);
    }
}
