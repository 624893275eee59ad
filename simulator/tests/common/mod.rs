//! Running the `flotilla-sim` binary from integration tests.

use std::process::{Command, Output};

/// Runs `flotilla-sim` with `args`.
pub fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flotilla-sim"))
        .args(args)
        .output()
        .expect("flotilla-sim runs")
}

/// Runs `flotilla-sim`, expects success, returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = sim(args);
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}
