//! Flotilla's per-cluster agent.
//!
//! - [`member`]: the [`member::MemberCluster`] trait, every call made to a member cluster.
//! - [`memory`]: [`memory::MemoryMember`], a simulated member (stage model, faults).
//! - [`kube_member`]: [`kube_member::KubeMember`], a member behind a real API server.
//! - [`cli`]: logging and exit codes shared by the binaries.
//! - [`install`]: the manifests that install a controller (RBAC, Deployment) and the agent.
//! - [`leader`]: leader election over a Lease, so two replicas are safe.
//! - [`reconcile`]: the [`reconcile::Agent`], which applies addons and reports readiness.

pub mod cli;
pub mod install;
pub mod kube_member;
pub mod leader;
pub mod member;
pub mod memory;
pub mod reconcile;

#[cfg(test)]
mod tests;
