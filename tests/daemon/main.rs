//! Real `hapair run` processes: pairs in the namespace lab (scripts/lab.sh) or on a bridged
//! segment, single nodes, the SPEC's behaviours (`daemon_spec`), the fault-injection suite
//! (`faults`), the init script, the lab script and the Debian package. Needs root (namespaces;
//! CI is root). Each former test file is a module of this one test binary:
//! `cargo test --test daemon MODULE::` runs one (`cargo test --test daemon daemon_spec::`).
//!
//! The tests share one process: every lab, namespace and directory name carries the process
//! id and a counter (`Lab::up`), so two tests never share one whatever tag they pick.
//! Not here: the fencing through a BMC (`tests/fence_ipmi.rs`), allocation (`tests/alloc/`).

#[path = "../common/mod.rs"]
mod common;

mod daemon_agents;
mod daemon_control;
mod daemon_flood;
mod daemon_freshness;
mod daemon_ops;
mod daemon_pair;
mod daemon_spec;
mod daemon_watchdog;
mod deb_package;
mod e2e_drbd;
mod e2e_failover;
mod e2e_groups;
mod e2e_health;
mod e2e_ipv6;
mod e2e_perlink;
mod e2e_routed;
mod e2e_watchdog;
mod faults;
mod init_script;
mod lab_script;
mod trusted_files;
