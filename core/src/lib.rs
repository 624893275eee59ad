//! The pure heart of Flotilla: API types, label selectors, cluster labels, placement and explain.
//!
//! Nothing here does I/O. Data flows one way through these modules:
//! facts ([`labels`]) → labels → placement ([`placement`]) → desired objects → status, and
//! [`explain`] says, requirement by requirement, why a pair is or is not placed.

pub mod field;
pub mod selector;
pub mod syntax;
pub mod types;
pub mod version;
