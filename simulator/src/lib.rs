//! Flotilla's command line, as a library so that tests drive the same code the binary runs.
//!
//! - [`input`]: reading FLEET.yaml and CATALOG.yaml, with errors naming file, line and field.
//! - [`report`]: `place` and `explain` output.
//! - [`debug`]: `get`, `describe`, `explain` over a saved state.
//! - [`world`]: host, simulated members, agents and manager in one process.
//! - [`state`]: the final state of a run (`--state-out`).
//! - [`scenario`]: scenarios and the fleet generator.
//! - [`sim`]: the simulation driver: timeline, faults, invariants, report.

pub mod debug;
pub mod input;
pub mod report;
pub mod scenario;
pub mod sim;
pub mod state;
pub mod world;
