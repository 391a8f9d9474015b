//! The `dopy` command-line tool.

fn main() {}
