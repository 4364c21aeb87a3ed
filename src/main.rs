//! The `marina` command line. The only place where errors become exit codes:
//! 0 ok, 1 runtime failure, 2 usage error or invalid config (SPEC §9).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use marina::app::AppError;
use marina::app::client::Daemon;
use marina::app::restore::{self, Progress, RestoreAnswer, RestoreRequest};
use marina::app::restore_text;
use marina::config::{self, Backend, Config, ProcessEnvironment};
use marina::model::{DockerName, InstanceId, TargetId};

/// Backup controller for Docker hosts: backs up volumes and databases with restic or a
/// custom image, on schedules from config.yml and targets from Docker labels.
#[derive(Debug, Parser)]
#[command(name = "marina", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the controller: watch the config and Docker, schedule backups, serve the API.
    ///
    /// Stops cleanly on SIGTERM or SIGINT; a second signal exits at once.
    Run(ConfigArgs),
    /// Show what Marina sees and would do: instances, their targets (from config or labels),
    /// next runs and every problem found. Read-only; needs the Docker engine.
    Plan(PlanArgs),
    /// Ask the running daemon to back up INSTANCE now.
    ///
    /// Prints the job id to follow (`GET /api/logs/job/{id}`). Exits 1 when the daemon
    /// refuses (unknown instance, already running) or cannot be reached.
    Backup(BackupArgs),
    /// List the snapshots INSTANCE can restore from, newest first (asks the running daemon).
    ///
    /// Lists the snapshots of every host that shares the instance's repository, with their
    /// short ids for `marina restore --snapshot`. Read-only: nothing is changed.
    /// `pre-restore` marks the safety snapshots an in-place restore saved just before it
    /// replaced content: restoring one in place undoes that restore. Exits 1 when the daemon
    /// refuses (unknown instance, custom-image instance, repository not readable) or cannot
    /// be reached.
    Snapshots(SnapshotsArgs),
    /// Restore a target of INSTANCE from a snapshot: into a new volume or container unless
    /// --in-place (asks the running daemon).
    ///
    /// By default nothing that exists is touched: a volume is restored into a new volume, a
    /// database into a new container of the same image and environment, on no network, with
    /// the dump loaded, to inspect or copy from. --in-place stops the containers that use the
    /// target, saves a safety snapshot tagged marina:pre-restore, replaces the content and
    /// starts the containers again; `marina snapshots INSTANCE TARGET` then lists the safety
    /// snapshot, and restoring it in place undoes the restore. A custom-image instance
    /// restores through its image (`restoreEntrypoint`, or the image's /restore.sh), whose
    /// safety copy is a backup the image makes with `MARINA_PRE_RESTORE=1`.
    ///
    /// Prints the plan (steps, size, conflicts) first; with --dry-run that is all (exit 0, or
    /// 1 when the plan has conflicts). Otherwise the restore is queued as a job whose log is
    /// followed until it ends: exit 0 when it succeeded, 1 otherwise. Ctrl-C stops following,
    /// not the restore. Try --dry-run first.
    Restore(RestoreArgs),
    /// Check a config file and print every problem with its line and column.
    ///
    /// Exits 0 when the config is valid (printing a one-line summary), 2 when it is not.
    Validate(ConfigArgs),
    /// Check that the running daemon answers `/healthz` (for container health checks).
    ///
    /// Exits 0 when it answers, 1 when it does not.
    Healthcheck(HealthcheckArgs),
    /// Print Marina's version.
    Version,
}

#[derive(Debug, Args)]
struct BackupArgs {
    /// The instance to back up.
    instance: String,
    #[command(flatten)]
    daemon: DaemonArgs,
}

/// Where the running daemon is, for the commands that ask it.
#[derive(Debug, Args)]
struct DaemonArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The daemon's base URL (default: from the config's apiBind and apiPort). The config's
    /// authPassword, when set, is used to log in.
    #[arg(long)]
    url: Option<String>,
}

#[derive(Debug, Args)]
struct SnapshotsArgs {
    /// The instance whose repository to list.
    #[arg(value_parser = restore::parse_instance)]
    instance: InstanceId,
    /// Only this target's snapshots: `volume:NAME` or `db:NAME` (default: every target's).
    #[arg(value_parser = restore::parse_target)]
    target: Option<TargetId>,
    /// Count files and size where restic did not record them (before restic 0.17); takes
    /// about a second per snapshot.
    #[arg(long)]
    count: bool,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    daemon: DaemonArgs,
}

#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // Each bool is its own command-line flag.
struct RestoreArgs {
    /// The instance whose repository holds the snapshot.
    #[arg(value_parser = restore::parse_instance)]
    instance: InstanceId,
    /// What to restore: `volume:NAME` (a Docker volume) or `db:NAME` (the database in the
    /// container NAME).
    #[arg(value_parser = restore::parse_target)]
    target: TargetId,
    /// The snapshot to restore: `latest` (the target's newest), or an id or its first 8 or
    /// more hex digits, as `marina snapshots` shows them. For a custom-image instance: the
    /// name its image gives one of its backups, handed to the image as written.
    #[arg(long, value_name = "ID|latest", default_value = "latest", value_parser = restore::parse_snapshot)]
    snapshot: String,
    /// The name of the new volume or container, which must not exist yet (default: chosen by
    /// Marina, like `NAME-restore-20261204-102030`).
    #[arg(long, value_name = "NAME", value_parser = restore::parse_name, conflicts_with = "in_place")]
    to: Option<DockerName>,
    /// Replace the target's own content instead: stops the containers that use it, saves a
    /// safety snapshot (tagged marina:pre-restore) first, replaces the content, starts the
    /// containers again; a database's dump is loaded with its engine's own client (Redis:
    /// `dump.rdb` is replaced and the container restarted). Without it, nothing that exists
    /// is changed.
    #[arg(long)]
    in_place: bool,
    /// Only print the plan (what is restored from where into what, the steps, the size and
    /// any conflicts); nothing is changed.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON, one document per line: the plan for a dry run; else the queued answer and,
    /// when the job ends, its final entry (the log lines then go to stderr).
    #[arg(long)]
    json: bool,
    /// Return once the restore is queued instead of following its log until it ends.
    #[arg(long, conflicts_with = "dry_run")]
    no_wait: bool,
    #[command(flatten)]
    daemon: DaemonArgs,
}

#[derive(Debug, Args)]
struct HealthcheckArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The daemon's base URL (default: from the config's apiBind and apiPort, else port 8080).
    #[arg(long)]
    url: Option<String>,
}

#[derive(Debug, Args)]
struct PlanArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// The config file.
    #[arg(long, short, env = "CONFIG_FILE", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
}

/// Exit code for an invalid config or a usage error.
const EXIT_INVALID: u8 = 2;

/// Exit code for a runtime failure.
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => block_on(marina::app::run(args.config), |()| ExitCode::SUCCESS),
        Command::Plan(args) => block_on(marina::app::plan(args.config.config), |plan| {
            if args.json {
                println!("{}", marina::plan::json(&plan.snapshot));
            } else {
                print!("{}", marina::plan::table(&plan.snapshot));
            }
            ExitCode::SUCCESS
        }),
        Command::Backup(args) => {
            let instance = args.instance.clone();
            block_on(
                async move {
                    marina::app::backup(&args.daemon.config.config, &args.instance, args.daemon.url)
                        .await
                },
                |accepted| {
                    println!("Backup of {instance} queued as job {}.", accepted.job_id);
                    ExitCode::SUCCESS
                },
            )
        }
        Command::Snapshots(args) => block_on(snapshots(args), |code| code),
        Command::Restore(args) => block_on(restore(args), |code| code),
        Command::Healthcheck(args) => block_on(
            async move { marina::app::healthcheck(&args.config.config, args.url).await },
            |()| ExitCode::SUCCESS,
        ),
        Command::Validate(args) => validate(&args),
        Command::Version => {
            println!("marina {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}

/// Runs `future` on a fresh runtime; errors become messages on stderr and exit codes.
fn block_on<T>(
    future: impl Future<Output = Result<T, AppError>>,
    done: impl FnOnce(T) -> ExitCode,
) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("marina: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(future) {
        Ok(value) => done(value),
        Err(AppError::InvalidConfig(e)) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_INVALID)
        }
        Err(e) => {
            eprintln!("marina: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// `marina snapshots`: the table, or the API's JSON.
async fn snapshots(args: SnapshotsArgs) -> Result<ExitCode, AppError> {
    let daemon = Daemon::connect(&args.daemon.config.config, args.daemon.url).await?;
    let (list, raw) =
        restore::snapshots(&daemon, &args.instance, args.target.as_ref(), args.count).await?;
    if args.json {
        println!("{}", pretty(&raw));
    } else {
        print!("{}", restore_text::snapshot_table(&list));
    }
    Ok(ExitCode::SUCCESS)
}

/// `marina restore`: the plan, then (unless a dry run) the queued job followed to its end.
async fn restore(args: RestoreArgs) -> Result<ExitCode, AppError> {
    let daemon = Daemon::connect(&args.daemon.config.config, args.daemon.url).await?;
    let request = RestoreRequest {
        instance: args.instance,
        target: args.target,
        snapshot: args.snapshot,
        to: args.to,
        in_place: args.in_place,
        dry_run: args.dry_run,
    };
    let json = args.json;
    let (accepted, raw) = match restore::restore(&daemon, &request).await? {
        RestoreAnswer::Planned { plan, raw } => {
            if json {
                println!("{raw}");
            } else {
                print!(
                    "{}{}",
                    restore_text::plan_text(&plan),
                    restore_text::dry_run_verdict(&plan)
                );
            }
            return Ok(if plan.conflicts.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILURE)
            });
        }
        RestoreAnswer::Conflicts { error, plan, raw } => {
            if json {
                println!("{raw}");
            } else {
                print!("{}", restore_text::plan_text(&plan));
            }
            eprintln!("marina: {error}");
            return Ok(ExitCode::from(EXIT_FAILURE));
        }
        RestoreAnswer::Queued { accepted, raw } => (accepted, raw),
    };
    let job = accepted.job_id;
    let target = request.target.to_string();
    if json {
        println!("{raw}");
    } else {
        println!("{}", restore_text::plan_text(&accepted.plan));
        print!("{}", restore_text::queued(&target, job));
    }
    if args.no_wait {
        if !json {
            println!("Follow it in the dashboard or with `GET /api/logs/job/{job}`.");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (entry, raw) = restore::follow(&daemon, &request.instance, job, |progress| {
        let text = match progress {
            Progress::Waiting => restore_text::waiting(job),
            Progress::Line(line) => restore_text::log_line(line),
        };
        // With --json, stdout carries only the JSON documents.
        if json {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    })
    .await?;
    if json {
        println!("{raw}");
    } else {
        print!("{}", restore_text::job_end(&entry));
    }
    if entry.status == "success" {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "marina: the restore of {target} (job {job}) ended {}; its log says why",
            entry.status
        );
        Ok(ExitCode::from(EXIT_FAILURE))
    }
}

/// A JSON document for people and `jq` alike.
fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

fn validate(args: &ConfigArgs) -> ExitCode {
    match config::load(&args.config, &ProcessEnvironment) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                eprintln!("{warning}");
            }
            println!("{}", summary(&args.config, &loaded.config));
            ExitCode::SUCCESS
        }
        Err(e) => {
            let errors = e
                .diagnostics
                .iter()
                .filter(|d| d.severity == config::Severity::Error)
                .count();
            eprintln!("{e}");
            eprintln!(
                "{}: {errors} {} found; the config is not valid",
                args.config.display(),
                if errors == 1 { "error" } else { "errors" }
            );
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// One line describing a valid config, without any secret.
fn summary(path: &std::path::Path, config: &Config) -> String {
    let restic = config
        .instances
        .iter()
        .filter(|i| matches!(i.backend, Backend::Restic { .. }))
        .count();
    let custom = config.instances.len() - restic;
    let targets: usize = config.instances.iter().map(|i| i.targets.len()).sum();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{} is valid: {} ({restic} restic, {custom} custom image), {} in config; node {}, API on {}:{}, authentication {}",
        path.display(),
        plural(config.instances.len(), "instance"),
        plural(targets, "target"),
        config.node_name,
        config.api.bind,
        config.api.port,
        if config.api.auth_password.is_some() {
            "on"
        } else {
            "off"
        },
    )
}
