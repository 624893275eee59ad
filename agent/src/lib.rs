//! Flotilla's per-cluster agent.
//!
//! - [`member`]: the [`member::MemberCluster`] trait, every call made to a member cluster.
//! - [`memory`]: [`memory::MemoryMember`], a simulated member (stage model, faults).
//! - [`kube_member`]: [`kube_member::KubeMember`], a member behind a real API server.
//! - [`reconcile`]: the [`reconcile::Agent`], which applies addons and reports readiness.

pub mod kube_member;
pub mod member;
pub mod memory;
pub mod reconcile;

#[cfg(test)]
mod tests;
