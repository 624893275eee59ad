//! What the binaries (`flotilla-agent`, `flotilla-manager`, `flotilla-sim`) do at their
//! edge, in one place: logs to stderr filtered by `FLOTILLA_LOG`, and errors as a one-line
//! message with a failing exit code.

use std::process::ExitCode;

/// Logs to stderr, colored only on a terminal; `FLOTILLA_LOG` (a `tracing` filter such as
/// `debug` or `flotilla_manager=trace`) overrides `default`.
pub fn init_logging(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLOTILLA_LOG")
                .unwrap_or_else(|_| default.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The exit code of a command's result, printing the error chain if any.
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
