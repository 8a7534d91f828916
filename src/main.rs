//! The `hapair` binary: parse the command line, then hand over to `hapair::cli`.

#![warn(clippy::undocumented_unsafe_blocks)]

fn main() {
    std::process::exit(hapair::cli::main());
}
