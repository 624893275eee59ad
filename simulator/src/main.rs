//! `flotilla-sim`: place, explain and print CRDs for a fleet of clusters and an addon catalog.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use flotilla_agent::memory::Behavior;
use flotilla_sim::world::WorldConfig;
use flotilla_sim::{input, report, run};

/// Federate addons across fleets of Kubernetes clusters, and test it at scale.
#[derive(Parser)]
#[command(name = "flotilla-sim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show which addons of a catalog go to which clusters of a fleet.
    Place {
        /// The fleet: clusters with their nodes, reported version and user labels.
        #[arg(long, value_name = "FLEET.yaml")]
        fleet: PathBuf,
        /// The catalog: FederatedAddon / FederatedClusterAddon objects (multi-document YAML).
        #[arg(long, value_name = "CATALOG.yaml")]
        catalog: PathBuf,
        /// Output format: a table per cluster, or one JSON object per (cluster, addon) line.
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Say, requirement by requirement, why an addon is or is not on a cluster.
    ///
    /// With neither --cluster nor --addon: one summary line per addon. With --addon: the
    /// summary, then every cluster. With --cluster: every addon on that cluster.
    Explain {
        /// The fleet file.
        #[arg(long, value_name = "FLEET.yaml")]
        fleet: PathBuf,
        /// The catalog file.
        #[arg(long, value_name = "CATALOG.yaml")]
        catalog: PathBuf,
        /// Only this cluster.
        #[arg(long, value_name = "NAME")]
        cluster: Option<String>,
        /// Only this addon (`name` or `namespace/name`).
        #[arg(long, value_name = "[NAMESPACE/]NAME")]
        addon: Option<String>,
    },
    /// Attach every cluster of a fleet, federate a catalog, and run the manager and the
    /// agents (in-process, simulated members) until the fleet converges: every placed addon
    /// deployed and ready (or held back exactly where `explain` says), every unplaced one
    /// absent. Exits 0 only if it converged before the deadline.
    Run {
        /// The fleet file.
        #[arg(long, value_name = "FLEET.yaml")]
        fleet: PathBuf,
        /// The catalog file.
        #[arg(long, value_name = "CATALOG.yaml")]
        catalog: PathBuf,
        /// Write the final state (clusters, labels, conditions, addons) as JSON here.
        #[arg(long, value_name = "STATE.json")]
        state_out: Option<PathBuf>,
        /// Give up after this long (e.g. 60s, 5m).
        #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
        deadline: std::time::Duration,
    },
    /// Print every CRD Flotilla serves, as YAML (pipe into `kubectl apply -f -`).
    Crds,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Place {
            fleet,
            catalog,
            output,
        } => {
            let (catalog, clusters) = input::load_world(&fleet, &catalog)?;
            for w in report::warnings(&clusters) {
                eprintln!("{w}");
            }
            let text = match output {
                Format::Table => report::place_table(&catalog, &clusters),
                Format::Json => report::place_json(&catalog, &clusters)?,
            };
            stdout.write_all(text.as_bytes())?;
        }
        Command::Explain {
            fleet,
            catalog,
            cluster,
            addon,
        } => {
            let (catalog, clusters) = input::load_world(&fleet, &catalog)?;
            for w in report::warnings(&clusters) {
                eprintln!("{w}");
            }
            let text = report::explain(&catalog, &clusters, cluster.as_deref(), addon.as_deref())
                .map_err(anyhow::Error::msg)?;
            stdout.write_all(text.as_bytes())?;
        }
        Command::Run {
            fleet,
            catalog,
            state_out,
            deadline,
        } => {
            let f = input::load_fleet(&fleet)?;
            let objects = input::load_catalog_objects(&catalog)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let outcome = rt.block_on(run::run_fleet(
                &f,
                objects,
                WorldConfig::default(),
                &Behavior::default(),
                deadline,
                |_, _| {},
            ));
            if let Some(path) = &state_out {
                let json = serde_json::to_string_pretty(&outcome.state)?;
                std::fs::write(path, json + "\n")
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            match &outcome.summary {
                Some(s) => writeln!(
                    stdout,
                    "converged in {:.2?}: {} clusters, {} placements ({} ready, {} held back as explain predicts)",
                    outcome.elapsed, s.clusters, s.placements, s.ready, s.blocked
                )?,
                None => {
                    writeln!(
                        stdout,
                        "not converged after {:.2?}; still behind:",
                        outcome.elapsed
                    )?;
                    for m in &outcome.mismatches {
                        writeln!(stdout, "  {m}")?;
                    }
                    anyhow::bail!(
                        "the fleet did not converge within {}",
                        humantime::format_duration(deadline)
                    );
                }
            }
        }
        Command::Crds => {
            for crd in flotilla_core::types::crds() {
                let yaml = serde_saphyr::to_string(&crd).context("rendering a CRD as YAML")?;
                writeln!(stdout, "---\n{}", yaml.trim_end())?;
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Broken pipes (`| head`) are not errors worth a message.
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
