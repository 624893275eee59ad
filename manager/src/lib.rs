//! Flotilla's manager: attaches clusters, keeps their health and labels, and federates
//! addons to every cluster that selects them.
//!
//! - [`attach`]: attaching a cluster from its kubeconfig (as `kubefedctl join`), detaching.
//! - [`install`]: the host manifests, and the access the manager gets in a member.
//! - [`host`]: the [`host::HostStore`] trait and [`host::MemoryHost`].
//! - [`kube_host`]: the host store and member connector over a real API server.
//! - [`state`]: [`state::Fed`], the federation state, derived from the stores.
//! - [`manager`]: the runtime tasks (probes, host watch, sync workers, status writer).
//! - [`queue`]: the per-cluster work queue.

pub mod attach;
pub mod host;
pub mod install;
pub mod kube_host;
pub mod manager;
pub mod queue;
pub mod state;
