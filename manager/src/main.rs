//! `flotilla-manager`: the Flotilla manager, and the commands to install it and to attach
//! and detach member clusters.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use flotilla_agent::kube_member::connect;
use flotilla_agent::leader::{LeaseConfig, identity, run_as_leader, shutdown};
use flotilla_manager::attach::{AttachOptions, attach, detach, read_member, revoke};
use flotilla_manager::install::{MANAGER, host_manifests};
use flotilla_manager::kube_host::{KubeConnector, KubeHost};
use flotilla_manager::manager::{ManagerConfig, start};

/// Attaches Kubernetes clusters (KubeFedCluster), probes their health, labels them from
/// their facts (cluster type, Kubernetes version, federate-* choices), and federates every
/// FederatedAddon / FederatedClusterAddon to the clusters its placement selects, as D2iQ
/// Kommander did.
#[derive(Parser)]
#[command(version, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    host: HostArgs,
    #[command(subcommand)]
    command: Command,
}

/// Where the host cluster is.
#[derive(Args)]
struct HostArgs {
    /// Kubeconfig of the host cluster; default: $KUBECONFIG, ~/.kube/config, or in-cluster.
    #[arg(long, global = true, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Context in the host kubeconfig.
    #[arg(long, global = true)]
    context: Option<String>,
    /// Namespace of KubeFedClusters, their Secrets and the manager's Lease.
    #[arg(long, global = true, default_value = "kommander")]
    namespace: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run the manager (two replicas elect a leader over a Lease; only it works).
    Run {
        /// Skip leader election (one replica only).
        #[arg(long)]
        no_leader_election: bool,
        /// Time between health probes of each cluster (KubeFed: 10s).
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        probe_period: Duration,
        /// How often a Ready cluster's /version is read again for its kubernetes-version
        /// label (a cluster coming back Ready is read at once).
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        facts_period: Duration,
        /// A cluster being detached that stays unreachable this long is detached anyway.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        detach_timeout: Duration,
    },
    /// Print what the host needs: CRDs, the cluster-type admission policy, RBAC and the
    /// manager's Deployment. Use: `flotilla-manager install | kubectl apply -f -`.
    Install {
        /// The manager's image.
        #[arg(long, default_value = concat!("ghcr.io/flotilla/flotilla:", env!("CARGO_PKG_VERSION")))]
        image: String,
        /// Replicas of the manager.
        #[arg(long, default_value_t = 2)]
        replicas: u32,
    },
    /// Attach a cluster from its kubeconfig: creates a ServiceAccount for the manager in
    /// it, then writes the token Secret and the KubeFedCluster in the host.
    Attach {
        /// The cluster's name in the host.
        name: String,
        /// The member's kubeconfig.
        #[arg(long, value_name = "FILE")]
        member_kubeconfig: PathBuf,
        /// Context in the member's kubeconfig.
        #[arg(long)]
        member_context: Option<String>,
        /// The member's API URL as the manager reaches it, if not the kubeconfig's.
        #[arg(long, value_name = "URL")]
        api_endpoint: Option<String>,
        /// Lifetime of the manager's token; attach again to renew it.
        #[arg(long, default_value = "365days", value_parser = humantime::parse_duration)]
        token_ttl: Duration,
        /// Extra labels on the KubeFedCluster, e.g. `kommander.mesosphere.io/federate-kibana=true`.
        #[arg(long = "label", value_name = "KEY=VALUE", value_parser = key_value)]
        labels: Vec<(String, String)>,
    },
    /// Detach a cluster: the manager removes its addons from the member (or gives up after
    /// its detach timeout if the member is unreachable), then the KubeFedCluster and Secret go.
    Detach {
        /// The cluster's name in the host.
        name: String,
        /// How long to wait for the manager to release the cluster.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        wait: Duration,
        /// Also remove the manager's ServiceAccount and RBAC from the member.
        #[arg(long, value_name = "FILE")]
        member_kubeconfig: Option<PathBuf>,
    },
    /// Why addons are, or are not, on clusters: requirement by requirement, with each
    /// cluster's actual labels, as the host holds them now.
    Explain {
        /// Only this cluster.
        #[arg(long, value_name = "NAME")]
        cluster: Option<String>,
        /// Only this addon (`name` or `namespace/name`).
        #[arg(long, value_name = "[NAMESPACE/]NAME")]
        addon: Option<String>,
    },
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let HostArgs {
        kubeconfig,
        context,
        namespace,
    } = cli.host;
    if let Command::Install { image, replicas } = &cli.command {
        for object in host_manifests(&namespace, image, *replicas) {
            let yaml = serde_saphyr::to_string(&object).context("rendering YAML")?;
            println!("---\n{}", yaml.trim_end());
        }
        print!("---\n{}", flotilla_core::types::admission_policy_yaml());
        return Ok(());
    }
    let host = connect(kubeconfig.as_deref(), context.as_deref()).await?;
    match cli.command {
        Command::Install { .. } => Ok(()),
        Command::Run {
            no_leader_election,
            probe_period,
            facts_period,
            detach_timeout,
        } => {
            let work = || async {
                // Built once leading: condition timestamps count from here.
                let config = ManagerConfig {
                    probe_period,
                    facts_period,
                    detach_timeout,
                    seed: rand::random(),
                    ..ManagerConfig::default()
                };
                let mut manager = start(
                    Arc::new(KubeHost::new(host.clone())),
                    Arc::new(KubeConnector::new(host.clone())),
                    config,
                    Arc::default(),
                );
                shutdown().await;
                tracing::info!("shutting down");
                manager.kill();
            };
            if no_leader_election {
                work().await;
                return Ok(());
            }
            let lease = LeaseConfig {
                namespace,
                name: MANAGER.into(),
                identity: identity(),
                duration_secs: 15,
                grace_secs: 5,
            };
            run_as_leader(host.clone(), &lease, work).await?;
            Ok(())
        }
        Command::Attach {
            name,
            member_kubeconfig,
            member_context,
            api_endpoint,
            token_ttl,
            labels,
        } => {
            let member = read_member(&member_kubeconfig, member_context.as_deref()).await?;
            let labels: BTreeMap<String, String> = labels.into_iter().collect();
            let opts = AttachOptions {
                name: &name,
                namespace: &namespace,
                api_endpoint: api_endpoint.as_deref(),
                token_ttl,
                labels,
            };
            attach(&host, &member, &opts).await?;
            println!("kubefedcluster.core.kubefed.io/{name} attached");
            Ok(())
        }
        Command::Detach {
            name,
            wait,
            member_kubeconfig,
        } => {
            if detach(&host, &name, &namespace, wait).await? {
                println!("kubefedcluster.core.kubefed.io/{name} detached");
            } else {
                println!("kubefedcluster.core.kubefed.io/{name} was not attached");
            }
            if let Some(path) = member_kubeconfig {
                let member = read_member(&path, None).await?;
                revoke(&member.client, &namespace).await?;
                println!("the manager's access to {name} is revoked");
            }
            Ok(())
        }
        Command::Explain { cluster, addon } => {
            let (catalog, views, warnings) = KubeHost::new(host).explain_inputs().await?;
            for w in warnings {
                eprintln!("warning: {w}");
            }
            let text = flotilla_core::explain::report(
                &catalog,
                &views,
                cluster.as_deref(),
                addon.as_deref(),
            )?;
            print!("{text}");
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    flotilla_agent::cli::init_logging("info");
    flotilla_agent::cli::exit_code(run(Cli::parse()).await)
}
