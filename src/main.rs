//! The `marina` command line. The only place where errors become exit codes:
//! 0 ok, 1 runtime failure, 2 usage error or invalid config (SPEC §9).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use marina::app::AppError;
use marina::config::{self, Backend, Config, ProcessEnvironment};

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
    config: ConfigArgs,
    /// The daemon's base URL (default: from the config's apiBind and apiPort).
    #[arg(long)]
    url: Option<String>,
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
                async move { marina::app::backup(&args.config.config, &args.instance, args.url).await },
                |accepted| {
                    println!("Backup of {instance} queued as job {}.", accepted.job_id);
                    ExitCode::SUCCESS
                },
            )
        }
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
