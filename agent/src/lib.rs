//! Flotilla's per-cluster agent.
//!
//! - [`member`]: the [`member::MemberCluster`] trait, every call made to a member cluster.
//! - [`memory`]: [`memory::MemoryMember`], a simulated member (stage model, faults).
//! - [`reconcile`]: the [`reconcile::Agent`], which applies addons and reports readiness.

pub mod member;
pub mod memory;
pub mod reconcile;

#[cfg(test)]
mod tests;
