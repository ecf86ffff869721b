//! The `moat` command line.

fn main() {}
