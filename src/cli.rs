//! Placeholder: filled in by a later change.

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    2
}
