//! `flotilla-sim`: scale-test addon federation with thousands of fake clusters, and place,
//! explain and inspect fleets. With no arguments it runs the built-in `default` scenario.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use flotilla_sim::scenario::{BUILT_IN, Scenario};
use flotilla_sim::sim::{Progress, Report, SimOptions, simulate};
use flotilla_sim::{debug, input, report};

/// A fleet run makes millions of small, short-lived allocations (statuses, member calls);
/// mimalloc serves them faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Federate addons across fleets of Kubernetes clusters, and test it at scale.
///
/// With no command, runs the built-in `default` scenario (1,000 simulated clusters).
#[derive(Parser)]
#[command(name = "flotilla-sim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario (or a fleet file) through the manager and agents, with its churn and
    /// faults, check invariants, and report. Exits 0 only if the fleet converged and no
    /// invariant was violated.
    Run(RunArgs),
    /// List the built-in scenarios, or print one as a starting file.
    Scenarios {
        /// Print this scenario's YAML.
        name: Option<String>,
    },
    /// Generate a fleet from a scenario, as FLEET.yaml (for `run --fleet`, `place`, `explain`).
    Generate {
        /// A built-in scenario name or a scenario file.
        #[arg(long, default_value = "default")]
        scenario: String,
        /// How many clusters (default: the scenario's).
        #[arg(long)]
        clusters: Option<usize>,
        /// Seed (default: the scenario's).
        #[arg(long)]
        seed: Option<u64>,
        /// Write here instead of stdout.
        #[arg(short, long, value_name = "FLEET.yaml")]
        output: Option<PathBuf>,
    },
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
    /// summary, then every cluster. With --cluster: every addon on that cluster. Works on a
    /// fleet and a catalog, or on the state a run saved (--state).
    Explain {
        /// The fleet file.
        #[arg(long, value_name = "FLEET.yaml", required_unless_present = "state")]
        fleet: Option<PathBuf>,
        /// The catalog file.
        #[arg(long, value_name = "CATALOG.yaml", required_unless_present = "state")]
        catalog: Option<PathBuf>,
        /// A state file written by `run --state-out`.
        #[arg(long, value_name = "STATE.json", conflicts_with_all = ["fleet", "catalog"])]
        state: Option<PathBuf>,
        /// Only this cluster.
        #[arg(long, value_name = "NAME")]
        cluster: Option<String>,
        /// Only this addon (`name` or `namespace/name`).
        #[arg(long, value_name = "[NAMESPACE/]NAME")]
        addon: Option<String>,
    },
    /// `kubectl get` over a saved state: kubefedclusters, addons, clusteraddons,
    /// federatedaddons, federatedclusteraddons (comma-separated).
    Get {
        /// What to list, e.g. `kubefedcluster` or `addons,clusteraddons`.
        resources: String,
        /// A state file written by `run --state-out`.
        #[arg(long, value_name = "STATE.json")]
        state: PathBuf,
        /// For addons: only this cluster's.
        #[arg(long)]
        cluster: Option<String>,
    },
    /// `kubectl describe` over a saved state: `kubefedcluster NAME`, `federatedaddon NAME -n NS`,
    /// `federatedclusteraddon NAME`.
    Describe {
        /// `kubefedcluster`, `federatedaddon` or `federatedclusteraddon`.
        kind: String,
        /// The object's name.
        name: String,
        /// The namespace (for federatedaddon).
        #[arg(short, long)]
        namespace: Option<String>,
        /// A state file written by `run --state-out`.
        #[arg(long, value_name = "STATE.json")]
        state: PathBuf,
    },
    /// Print every CRD Flotilla serves, as YAML (pipe into `kubectl apply -f -`).
    Crds,
}

#[derive(clap::Args, Default)]
struct RunArgs {
    /// A built-in scenario name or a scenario file (default: `default`, or none with --fleet).
    #[arg(long)]
    scenario: Option<String>,
    /// How many clusters to generate (default: the scenario's).
    #[arg(long)]
    clusters: Option<usize>,
    /// Seed (default: the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// Run this fleet instead of generating one.
    #[arg(long, value_name = "FLEET.yaml")]
    fleet: Option<PathBuf>,
    /// The catalog (default: the article's, built in).
    #[arg(long, value_name = "CATALOG.yaml")]
    catalog: Option<PathBuf>,
    /// Deterministic virtual time: simulated delays take no wall time, and a seed replays
    /// the run byte for byte.
    #[arg(long)]
    virtual_time: bool,
    /// Write the report as JSON here.
    #[arg(long, value_name = "FILE.json")]
    report: Option<PathBuf>,
    /// Write the final state (clusters, labels, conditions, addons, catalog) as JSON here,
    /// for `get`, `describe` and `explain --state`.
    #[arg(long, value_name = "STATE.json")]
    state_out: Option<PathBuf>,
    /// With --fleet and no scenario: give up after this long (e.g. 60s, 5m).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    deadline: Option<Duration>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

const ARTICLE_CATALOG: &str = include_str!("../../docs/examples/catalog.yaml");

fn load_scenario(name: &str) -> anyhow::Result<Scenario> {
    if BUILT_IN.iter().any(|b| b.0 == name) {
        return Ok(Scenario::built_in(name)?);
    }
    let p = Path::new(name);
    let text = std::fs::read_to_string(p)
        .with_context(|| format!("{name:?} is neither a built-in scenario nor a readable file"))?;
    Ok(Scenario::parse(&text, &p.display().to_string())?)
}

fn run_scenario(args: RunArgs, out: &mut impl std::io::Write) -> anyhow::Result<bool> {
    let objects = match &args.catalog {
        Some(p) => input::load_catalog_objects(p)?,
        None => input::catalog_objects_from_str(ARTICLE_CATALOG, "<built-in article catalog>")?,
    };
    let fleet = args.fleet.as_deref().map(input::load_fleet).transpose()?;
    let mut scenario = match (&args.scenario, &fleet) {
        (Some(s), _) => load_scenario(s)?,
        (None, Some(_)) => Scenario::plain(args.deadline.unwrap_or(Duration::from_secs(60))),
        (None, None) => Scenario::built_in("default")?,
    };
    if let Some(d) = args.deadline {
        scenario.deadline = flotilla_sim::scenario::Dur(d);
    }
    let clusters = fleet
        .as_ref()
        .map_or(args.clusters.unwrap_or(scenario.clusters), |f| {
            f.clusters.len()
        });
    let seed = args.seed.unwrap_or(scenario.seed);
    let opts = SimOptions {
        scenario: scenario.clone(),
        fleet,
        clusters,
        seed,
        virtual_time: args.virtual_time,
        keep_state: args.state_out.is_some(),
    };

    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(100);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let clock = if args.virtual_time { "virtual" } else { "wall" };
    let mut last_draw = std::time::Instant::now() - Duration::from_secs(1);
    let on_progress = |p: &Progress| {
        let Some(b) = &bar else { return };
        if last_draw.elapsed() < Duration::from_millis(100) {
            return;
        }
        last_draw = std::time::Instant::now();
        let pos = if p.planned.is_zero() {
            if p.converged_once { 100 } else { 50 }
        } else {
            (p.elapsed.as_secs_f64() / p.planned.as_secs_f64() * 100.0).min(100.0) as u64
        };
        b.set_position(pos);
        b.set_message(format!(
            "{} {clock} | {} attached | {} settled | {}",
            humantime::format_duration(Duration::from_secs(p.elapsed.as_secs())),
            p.attached,
            p.ready_clusters,
            if p.converged_once {
                "converged once"
            } else {
                "converging"
            }
        ));
    };
    eprintln!(
        "scenario {} | {} clusters | seed {} | {} time | deadline {}",
        scenario.name,
        clusters,
        seed,
        clock,
        humantime::format_duration(scenario.deadline.0)
    );
    let (report, state) = if args.virtual_time {
        // Timers only: simulated members do no I/O, and each jump of the paused clock then
        // parks without polling an I/O driver.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()?;
        rt.block_on(simulate(opts, objects, on_progress))
    } else {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(simulate(opts, objects, on_progress))
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(p) = &args.report {
        std::fs::write(p, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let (Some(p), Some(state)) = (&args.state_out, &state) {
        std::fs::write(p, serde_json::to_string_pretty(state)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    write_summary(out, &report)?;
    Ok(report.converged)
}

fn write_summary(out: &mut impl std::io::Write, r: &Report) -> std::io::Result<()> {
    let opt_ms =
        |v: Option<u64>| v.map_or("-".to_string(), |ms| format!("{:.2}s", ms as f64 / 1000.0));
    let rows: Vec<(&str, String)> = vec![
        (
            "scenario",
            format!("{} (seed {}, {} clock)", r.scenario, r.seed, r.clock),
        ),
        (
            "result",
            if r.converged {
                "converged, no invariant violated".into()
            } else {
                "FAILED".into()
            },
        ),
        (
            "clusters / addons",
            format!("{} / {}", r.clusters, r.addons),
        ),
        (
            "placements",
            format!(
                "{} ({} ready, {} held back as explain predicts)",
                r.placements, r.ready, r.blocked
            ),
        ),
        (
            "time to converge",
            format!(
                "{} ({} clock); wall {}",
                opt_ms(r.time_to_converge_ms),
                r.clock,
                opt_ms(r.wall.time_to_converge_ms)
            ),
        ),
        (
            "final convergence",
            format!(
                "{} after the last change",
                opt_ms(r.time_to_final_converge_ms)
            ),
        ),
        (
            "propagation p50/p90/p99/max",
            format!(
                "{:.0} / {:.0} / {:.0} / {:.0} ms ({} samples)",
                r.propagation_latency.p50_ms,
                r.propagation_latency.p90_ms,
                r.propagation_latency.p99_ms,
                r.propagation_latency.max_ms,
                r.propagation_latency.count
            ),
        ),
        (
            "member writes",
            format!(
                "manager {} ({} per placement), agents {}, injected faults {}; reads {}",
                r.writes.manager,
                r.writes.manager_per_placement,
                r.writes.agent,
                r.writes.faults_injected,
                r.member_reads
            ),
        ),
        (
            "reconciles / probes",
            format!(
                "{} syncs; probes ok {}, not ok {}, offline {}",
                r.reconciles, r.probes.ok, r.probes.not_ok, r.probes.offline
            ),
        ),
        (
            "wall",
            format!(
                "{:.2}s, peak RSS {}",
                r.wall.elapsed_ms as f64 / 1000.0,
                r.wall
                    .peak_rss_bytes
                    .map_or("-".into(), |b| format!("{:.0} MiB", b as f64 / 1048576.0))
            ),
        ),
    ];
    for (k, v) in rows {
        writeln!(out, "{k:<28} {v}")?;
    }
    for v in r.violations.iter().take(20) {
        writeln!(
            out,
            "VIOLATION {} at {}ms{}{}: {} (replay with --seed {})",
            v.invariant,
            v.at_ms,
            v.cluster
                .as_ref()
                .map_or(String::new(), |c| format!(" cluster {c}")),
            v.addon
                .as_ref()
                .map_or(String::new(), |a| format!(" addon {a}")),
            v.detail,
            v.seed
        )?;
    }
    if r.violations.len() > 20 {
        writeln!(
            out,
            "... and {} more violations (see --report)",
            r.violations.len() - 20
        )?;
    }
    Ok(())
}

fn write_crds(out: &mut impl std::io::Write) -> anyhow::Result<()> {
    for crd in flotilla_core::types::crds() {
        let yaml = serde_saphyr::to_string(&crd).context("rendering a CRD as YAML")?;
        writeln!(out, "---\n{}", yaml.trim_end())?;
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<bool> {
    let mut stdout = std::io::stdout().lock();
    match cli.command.unwrap_or(Command::Run(RunArgs::default())) {
        Command::Run(args) => return run_scenario(args, &mut stdout),
        Command::Scenarios { name: None } => {
            for (name, description, _) in BUILT_IN {
                writeln!(stdout, "{name:<14} {description}")?;
            }
        }
        Command::Scenarios { name: Some(name) } => {
            let (_, _, yaml) = BUILT_IN
                .iter()
                .find(|b| b.0 == name)
                .ok_or_else(|| flotilla_sim::scenario::ScenarioError::Unknown(name.clone()))?;
            stdout.write_all(yaml.as_bytes())?;
        }
        Command::Generate {
            scenario,
            clusters,
            seed,
            output,
        } => {
            let s = load_scenario(&scenario)?;
            let fleet = s.generate(clusters.unwrap_or(s.clusters), 0, seed.unwrap_or(s.seed));
            let yaml = serde_saphyr::to_string(&fleet).context("rendering the fleet as YAML")?;
            match output {
                Some(p) => {
                    std::fs::write(&p, yaml).with_context(|| format!("writing {}", p.display()))?
                }
                None => stdout.write_all(yaml.as_bytes())?,
            }
        }
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
            state,
            cluster,
            addon,
        } => {
            let (catalog, clusters) = match (state, fleet, catalog) {
                (Some(s), _, _) => debug::load_state(&s)?.world()?,
                (None, Some(f), Some(c)) => input::load_world(&f, &c)?,
                _ => anyhow::bail!("explain needs --fleet and --catalog, or --state"),
            };
            for w in report::warnings(&clusters) {
                eprintln!("{w}");
            }
            let text = report::explain(&catalog, &clusters, cluster.as_deref(), addon.as_deref())
                .map_err(anyhow::Error::msg)?;
            stdout.write_all(text.as_bytes())?;
        }
        Command::Get {
            resources,
            state,
            cluster,
        } => {
            let s = debug::load_state(&state)?;
            stdout.write_all(
                s.get(&resources, cluster.as_deref())
                    .map_err(anyhow::Error::msg)?
                    .as_bytes(),
            )?;
        }
        Command::Describe {
            kind,
            name,
            namespace,
            state,
        } => {
            let s = debug::load_state(&state)?;
            stdout.write_all(
                s.describe(&kind, &name, namespace.as_deref())
                    .map_err(anyhow::Error::msg)?
                    .as_bytes(),
            )?;
        }
        Command::Crds => write_crds(&mut stdout)?,
    }
    Ok(true)
}

fn main() -> ExitCode {
    flotilla_agent::cli::init_logging("warn");
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
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
