//! The tests that need neither root nor a namespace nor a daemon that stays up: the library's
//! pure parts (the configuration, the wire format, the core's scenarios in the simulator's
//! world, status rendering, migrations, the fuzz corpora) and the binary's offline commands
//! (`check`, `help`, `import-heartbeat`, `export-pacemaker`, ...). Each former test file is a
//! module of this one test binary, which links the crate once for all of them:
//! `cargo test --test pure MODULE::` runs one (`cargo test --test pure config_invalid::`).
//! Not here: anything that needs root (`tests/drivers/`, `tests/daemon/`), the allocation
//! census (`tests/alloc/`) and the simulator's seeds (`tests/sim.rs`).

#[path = "../common/mod.rs"]
mod common;

mod agents_check;
mod cli;
mod config_board;
mod config_drbd;
mod config_invalid;
mod config_links;
mod config_props;
mod core_scenarios;
mod fuzz_corpus;
mod migrate_heartbeat;
mod migrate_pacemaker;
mod records_tool;
mod smoke;
mod status;
mod wire_bench;
mod wire_props;
