//! The pure heart of Flotilla: API types, label selectors, cluster labels, placement and explain.
//!
//! Nothing here does I/O. Data flows one way through these modules:
//! facts ([`labels`]) → labels → placement ([`placement`]) → desired objects → status, and
//! [`explain`] says, requirement by requirement, why a pair is or is not placed.
//!
//! - [`selector`]: label selectors with exactly apimachinery's matching and validation.
//! - [`label_set`]: label maps with their strings shared across a fleet.
//! - [`labels`]: cluster facts → `kommander.mesosphere.io/*` labels.
//! - [`catalog`]: Federated* objects validated and compiled.
//! - [`placement`]: the fast decision index; [`explain`]: the reasons.
//! - [`types`]: the CRDs; [`fleet`] and [`yaml`]: the input files.

pub mod backoff;
pub mod catalog;
pub mod explain;
pub mod field;
pub mod fleet;
pub mod label_set;
pub mod labels;
pub mod placement;
pub mod render;
pub mod selector;
pub mod syntax;
pub mod types;
pub mod version;
pub mod yaml;
