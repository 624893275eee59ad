//! `flotilla-sim`: place, explain and print CRDs for a fleet of clusters and an addon catalog.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use flotilla_sim::{input, report};

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
