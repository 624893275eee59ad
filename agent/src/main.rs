//! `flotilla-agent`: the agent of one member cluster, and the manifests that install it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use flotilla_agent::install::member_manifests;
use flotilla_agent::kube_member::{KubeMember, connect};
use flotilla_agent::leader::{LeaseConfig, identity, run_as_leader, shutdown};
use flotilla_agent::reconcile::{Agent, AgentConfig};

/// Applies the Addon and ClusterAddon objects the Flotilla manager writes into this
/// cluster: server-side applies their manifests in dependency order, judges readiness
/// (Deployments available, Jobs complete, CRDs established), reports READY / STAGE /
/// REVISION on their status, and uninstalls them when they are deleted.
#[derive(Parser)]
#[command(version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent against a member cluster (two replicas elect a leader over a Lease).
    Run {
        /// The member's name, as attached to the manager (for logs).
        #[arg(long, value_name = "NAME")]
        cluster_name: String,
        /// Kubeconfig of the member; default: $KUBECONFIG, ~/.kube/config, or in-cluster.
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
        /// Context in the kubeconfig.
        #[arg(long)]
        context: Option<String>,
        /// Namespace of the leader-election Lease.
        #[arg(long, default_value = "kommander")]
        namespace: String,
        /// Skip leader election (one replica only).
        #[arg(long)]
        no_leader_election: bool,
        /// Look at every addon again this often even when nothing changed.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        resync: Duration,
    },
    /// Print what a member needs: the Addon/ClusterAddon CRDs, the addon namespace, the
    /// agent's RBAC and Deployment. Use: `flotilla-agent install --cluster-name alpha | kubectl apply -f -`.
    Install {
        /// The member's name, as attached to the manager.
        #[arg(long, value_name = "NAME")]
        cluster_name: String,
        /// Namespace the agent runs in.
        #[arg(long, default_value = "kommander")]
        namespace: String,
        /// Namespace Addon objects live in.
        #[arg(long, default_value = "kubeaddons")]
        addon_namespace: String,
        /// The agent's image.
        #[arg(long, default_value = concat!("ghcr.io/flotilla/flotilla:", env!("CARGO_PKG_VERSION")))]
        image: String,
    },
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Install {
            cluster_name,
            namespace,
            addon_namespace,
            image,
        } => {
            for object in member_manifests(&cluster_name, &namespace, &addon_namespace, &image) {
                let yaml = serde_saphyr::to_string(&object).context("rendering YAML")?;
                println!("---\n{}", yaml.trim_end());
            }
            Ok(())
        }
        Command::Run {
            cluster_name,
            kubeconfig,
            context,
            namespace,
            no_leader_election,
            resync,
        } => {
            let client = connect(kubeconfig.as_deref(), context.as_deref()).await?;
            let work = || async {
                let agent = Agent::new(
                    cluster_name.as_str(),
                    KubeMember::new(client.clone()),
                    AgentConfig {
                        resync,
                        ..AgentConfig::default()
                    },
                    rand::random(),
                );
                tokio::select! {
                    () = agent.run() => {}
                    () = shutdown() => tracing::info!("shutting down"),
                }
            };
            if no_leader_election {
                work().await;
                return Ok(());
            }
            let lease = LeaseConfig {
                namespace,
                name: "flotilla-agent".into(),
                identity: identity(),
                duration_secs: 15,
                grace_secs: 5,
            };
            run_as_leader(client.clone(), &lease, work).await?;
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    flotilla_agent::cli::init_logging("info");
    flotilla_agent::cli::exit_code(run(Cli::parse()).await)
}
