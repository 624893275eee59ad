//! Flotilla's command line, as a library so that tests drive the same code the binary runs.
//!
//! - [`input`]: reading FLEET.yaml and CATALOG.yaml, with errors naming file, line and field.
//! - [`report`]: `place` and `explain` output.
//! - [`world`]: host, simulated members, agents and manager in one process.
//! - [`run`]: `run`, until the fleet converges.

pub mod input;
pub mod report;
pub mod run;
pub mod world;
