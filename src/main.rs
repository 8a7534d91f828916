//! The `hapair` binary: parse the command line, then hand over to `hapair::cli`.

fn main() {
    std::process::exit(hapair::cli::main());
}
