//! The `provider-desk` command: `serve` (the default) and the operator's sub-commands.
//!
//! The command line is declared with `clap`'s derive ([`Cli`]): each sub-command's doc comment is
//! its `--help`, a mistyped command or option gets a suggestion, and a usage error exits with
//! status 2 before anything is opened. A command that fails while it runs exits with status 1.

use clap::{ArgGroup, Args, Parser, Subcommand};
use provider_desk::app::{build_services, Application};
use provider_desk::config::Config;
use provider_desk::domain::{format_time, new_id, Id, OutboxEntry, ProviderStatus, ServiceProvider};
use provider_desk::service::auth::MAX_PASSWORD_BYTES;
use provider_desk::service::jobs::Job;
use provider_desk::service::Services;
use provider_desk::telemetry::{self, LogFormat, LogTarget};
use provider_desk::{graphql, seed};
use serde_json::json;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

/// The backend of the service providers' mini-program.
#[derive(Parser)]
#[command(
    name = "provider-desk",
    after_help = "Every command reads the same environment variables (and .env) as the server; see the README."
)]
struct Cli {
    /// What to do; `serve` when none is named.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default); configured by environment variables (see the README)
    Serve,
    /// Add the demo providers demo-a and demo-b (password demo12345) if the store has no provider
    Seed,
    /// Write the GraphQL SDL to a file
    ExportSchema {
        /// Where to write it
        #[arg(default_value = "schema.graphql")]
        path: PathBuf,
    },
    /// Add a provider account
    ///
    /// The password is asked for on the terminal (not echoed), or read from standard input with
    /// --password-stdin.
    CreateProvider(NewProvider),
    /// Set a provider's password and end every session signed in with the old one
    ///
    /// The password is asked for on the terminal (not echoed), or read from standard input with
    /// --password-stdin.
    ResetPassword {
        /// The provider's username
        #[arg(value_parser = not_blank)]
        username: String,
        /// Read the password from standard input (all of it, less one final line break)
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lock a provider out: refuse its sign-in, tokens and refresh tokens, and end its sessions
    ///
    /// A running server refuses its tokens within 2 s and closes its open WebSockets within
    /// WS_PING_SECONDS.
    DeactivateProvider {
        /// The provider's username
        #[arg(value_parser = not_blank)]
        username: String,
    },
    /// Let a deactivated provider sign in again
    ActivateProvider {
        /// The provider's username
        #[arg(value_parser = not_blank)]
        username: String,
    },
    /// List the providers, oldest first, one JSON line each (no password hash)
    ListProviders,
    /// End every session of a provider, as reset-password does, without changing its password
    ///
    /// A running server refuses the sessions' tokens within 2 s and closes their open WebSockets
    /// within WS_PING_SECONDS; the provider may sign in again at once.
    EndSessions {
        /// The provider's username
        #[arg(value_parser = not_blank)]
        username: String,
    },
    /// Print the effective configuration (secrets hidden) and check the backends
    ///
    /// Checks that the store, the JWT secret and the token store answer; exits with 1 on any
    /// problem.
    CheckConfig,
    /// Run the scheduled jobs once, now; prints one JSON line per job
    RunJobs {
        /// The jobs to run (all of them when none is named): customer-status, unresolved-issues,
        /// usage-scores, sla-breaches, chat-wait-alerts, outbox-prune, events-prune,
        /// idempotency-keys-prune, revoked-access-tokens-prune, refresh-tokens-prune,
        /// token-families-prune, attachments-orphans
        #[arg(value_name = "JOB", value_parser = parse_job)]
        jobs: Vec<Job>,
        /// Run as of this time (RFC 3339) instead of now: service-level breaches and chat waits are
        /// judged at it. For tests and for operators catching up; the prune jobs still prune by the real time.
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        at: Option<provider_desk::domain::Timestamp>,
    },
    /// Look into the outbox and replay its dead letters
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
}

/// The account `create-provider` adds. Given twice, an option's last value counts.
#[derive(Args)]
#[command(args_override_self = true)]
struct NewProvider {
    /// The sign-in name: at most 64 characters, no spaces
    #[arg(long, value_parser = not_blank)]
    username: String,
    /// The provider's display name
    #[arg(long, value_parser = not_blank)]
    name: String,
    /// The provider's email address
    #[arg(long, value_parser = not_blank)]
    email: String,
    /// The person to contact at the provider
    #[arg(long, value_parser = trimmed)]
    contact_person: Option<String>,
    /// A phone number
    #[arg(long, value_parser = trimmed)]
    phone: Option<String>,
    /// The region the provider serves
    #[arg(long, value_parser = trimmed)]
    region: Option<String>,
    /// Read the password from standard input (all of it, less one final line break)
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// How many outbox deliveries are pending, delivered and dead (one JSON line)
    Stats,
    /// List the dead letters, oldest first, one JSON line each
    DeadLetters {
        /// How many to list at most
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
    },
    /// Put dead letters back in the queue with a fresh set of attempts
    ///
    /// A running server delivers them within OUTBOX_POLL_INTERVAL_MS.
    #[command(group(ArgGroup::new("which").required(true).args(["all", "ids"])))]
    Replay {
        /// Every dead letter
        #[arg(long)]
        all: bool,
        /// The delivery ids of the dead letters to replay
        #[arg(value_name = "ID", value_parser = parse_delivery_id)]
        ids: Vec<Id>,
    },
}

/// An option's value without the blanks around it.
fn trimmed(value: &str) -> Result<String, String> {
    Ok(value.trim().to_owned())
}

/// As [`trimmed`], and not empty.
fn not_blank(value: &str) -> Result<String, String> {
    Some(value.trim())
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| "must not be empty".to_owned())
}

fn parse_time(text: &str) -> Result<provider_desk::domain::Timestamp, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&chrono::Utc))
        .map_err(|e| format!("not an RFC 3339 time such as 2026-01-29T10:00:00Z: {e}"))
}

fn parse_job(name: &str) -> Result<Job, String> {
    Job::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Job::ALL.iter().map(|job| job.name()).collect();
        format!("unknown job; the jobs are {}", names.join(", "))
    })
}

fn parse_delivery_id(id: &str) -> Result<Id, String> {
    Id::parse(id).ok_or_else(|| "not a delivery id".to_owned())
}

/// The shortest password the CLI sets.
const MIN_PASSWORD_CHARS: usize = 8;

#[global_allocator]
static ALLOCATOR: provider_desk::allocator::Allocator = provider_desk::allocator::Allocator;

fn main() -> ExitCode {
    provider_desk::allocator::configure();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .on_thread_park(provider_desk::allocator::on_runtime_thread_park)
        .enable_all()
        .build();
    runtime.expect("the async runtime starts").block_on(run())
}

async fn run() -> ExitCode {
    let _ = dotenvy::dotenv();
    let command = Cli::parse().command.unwrap_or(Command::Serve);
    // The server logs to standard output; the other commands to standard error, as their
    // standard output is their answer.
    let log_target = if matches!(command, Command::Serve) { LogTarget::Stdout } else { LogTarget::Stderr };
    let log_format = std::env::var("LOG_FORMAT").ok().and_then(|value| LogFormat::parse(&value)).unwrap_or_default();
    telemetry::init(log_format, log_target);
    let result = match command {
        Command::Serve => serve().await,
        Command::Seed => seed_demo().await,
        Command::ExportSchema { path } => export_schema(&path),
        Command::CreateProvider(provider) => create_provider(provider).await,
        Command::ResetPassword { username, password_stdin } => reset_password(&username, password_stdin).await,
        Command::DeactivateProvider { username } => set_status(&username, ProviderStatus::Inactive).await,
        Command::ActivateProvider { username } => set_status(&username, ProviderStatus::Active).await,
        Command::ListProviders => list_providers().await,
        Command::EndSessions { username } => end_sessions(&username).await,
        Command::CheckConfig => return check_config().await,
        Command::RunJobs { jobs, at } => run_jobs(jobs, at).await,
        Command::Outbox { command } => outbox(command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("provider-desk: {message}");
            ExitCode::FAILURE
        }
    }
}

fn config() -> Result<Config, String> {
    Config::from_env().map_err(|e| e.to_string())
}

async fn serve() -> Result<(), String> {
    // Listen for the signals before anything else, so a SIGTERM during start-up is not lost.
    let signal = shutdown_signal().map_err(|e| format!("cannot listen for signals: {e}"))?;
    let application = Application::build(config()?).await.map_err(|e| e.to_string())?;
    application.run_until(signal).await.map_err(|e| e.to_string())
}

async fn seed_demo() -> Result<(), String> {
    let services = build_services(&config()?).await.map_err(|e| e.to_string())?;
    let seeded = seed::seed_demo_if_empty(&services).await.map_err(|e| e.to_string())?;
    println!("{}", if seeded { "demo data seeded" } else { "the store already holds providers; nothing seeded" });
    Ok(())
}

async fn offline_services() -> Result<Services, String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    build_services(&config).await.map_err(|e| e.to_string())
}

/// Runs the named jobs (all without names) once, each under its lease: a job that another process
/// is running just then is reported as skipped.
async fn run_jobs(jobs: Vec<Job>, at: Option<provider_desk::domain::Timestamp>) -> Result<(), String> {
    let jobs = if jobs.is_empty() { Job::ALL.to_vec() } else { jobs };
    let services = offline_services().await?;
    if let Some(at) = at {
        services.clock.set(at);
    }
    let owner = new_id("cli").to_string();
    for job in jobs {
        let line = match services.jobs.run_now(job, &owner).await.map_err(|e| format!("{}: {e:?}", job.name()))? {
            Some(report) => {
                json!({ "job": job.name(), "ran": true, "changed": report.changed, "summary": report.summary })
            }
            None => json!({ "job": job.name(), "ran": false, "summary": "another process is running it" }),
        };
        println!("{line}");
    }
    Ok(())
}

async fn outbox(command: OutboxCommand) -> Result<(), String> {
    let services = offline_services().await?;
    let store = &services.store;
    let failed = |e: provider_desk::error::AppError| format!("{e:?}");
    match command {
        OutboxCommand::Stats => {
            let counts = store.outbox_counts().await.map_err(failed)?;
            println!("{}", json!({ "pending": counts.pending, "delivered": counts.delivered, "dead": counts.dead }));
        }
        OutboxCommand::DeadLetters { limit } => {
            for entry in store.dead_letters(limit).await.map_err(failed)? {
                println!("{}", dead_letter_line(&entry));
            }
        }
        OutboxCommand::Replay { all, ids } => {
            // clap lets through exactly one of the two.
            let ids = if all { None } else { Some(ids) };
            let replayed = store.replay_dead_letters(ids.as_deref(), chrono::Utc::now()).await.map_err(failed)?;
            println!("{}", json!({ "replayed": replayed }));
        }
    }
    Ok(())
}

fn dead_letter_line(entry: &OutboxEntry) -> serde_json::Value {
    let draft = &entry.draft;
    json!({
        "id": draft.id.as_str(),
        "target": draft.target.as_str(),
        "type": draft.event_type,
        "serviceProviderId": draft.provider_id.as_str(),
        "customerId": draft.customer_id.as_ref().map(Id::as_str),
        "orderingKey": draft.ordering_key,
        "sequence": entry.sequence,
        "attempts": entry.attempts,
        "lastError": entry.last_error,
        "createdAt": format_time(&draft.created_at),
        "deadAt": entry.dead_at.as_ref().map(format_time),
    })
}

fn export_schema(path: &std::path::Path) -> Result<(), String> {
    let shown = path.display();
    std::fs::write(path, graphql::sdl()).map_err(|e| format!("cannot write {shown}: {e}"))?;
    println!("wrote {shown}");
    Ok(())
}

async fn create_provider(provider: NewProvider) -> Result<(), String> {
    let NewProvider { username, name, email, contact_person, phone, region, password_stdin } = provider;
    if username.chars().count() > provider_desk::service::auth::MAX_USERNAME_CHARS
        || username.chars().any(char::is_whitespace)
    {
        return Err("--username: at most 64 characters, no spaces".to_owned());
    }
    if !email.contains('@') {
        return Err(format!("--email: {email:?} is not an email address"));
    }
    let password = read_new_password(password_stdin)?;
    let services = build_services(&config()?).await.map_err(|e| e.to_string())?;
    let store = &services.store;
    if store.provider_credentials(&username).await.map_err(|e| describe_error(&e))?.is_some() {
        return Err(format!("a provider with the username {username:?} already exists"));
    }
    let hash = services.auth.hash_password(&password).await.map_err(|e| describe_error(&e))?;
    let now = chrono::Utc::now();
    let provider = ServiceProvider {
        id: new_id("sp"),
        username: username.clone(),
        name,
        contact_person: contact_person.unwrap_or_default(),
        phone: phone.unwrap_or_default(),
        email,
        region: region.unwrap_or_default(),
        status: ProviderStatus::Active,
        created_at: now,
        updated_at: now,
    };
    store
        .insert_provider(&provider, &hash)
        .await
        .map_err(|e| format!("cannot create the provider: {}", describe_error(&e)))?;
    println!("created provider {} ({username})", provider.id);
    Ok(())
}

async fn reset_password(username: &str, password_stdin: bool) -> Result<(), String> {
    let password = read_new_password(password_stdin)?;
    let services = build_services(&config()?).await.map_err(|e| e.to_string())?;
    let ended = match services.auth.reset_password(username, &password).await {
        Ok(ended) => ended,
        Err(provider_desk::error::AppError::NotFound(_)) => {
            return Err(format!("no provider has the username {username:?}"))
        }
        Err(error) => return Err(describe_error(&error)),
    };
    println!("password of {username} reset; {ended} signed-in session(s) ended");
    Ok(())
}

async fn set_status(username: &str, status: ProviderStatus) -> Result<(), String> {
    let services = offline_services().await?;
    let ended =
        services.auth.set_provider_status(username, status).await.map_err(|e| unknown_username(username, &e))?;
    match status {
        ProviderStatus::Inactive => println!("provider {username} deactivated; {ended} signed-in session(s) ended"),
        ProviderStatus::Active => println!("provider {username} activated"),
    }
    Ok(())
}

async fn end_sessions(username: &str) -> Result<(), String> {
    let services = offline_services().await?;
    let ended = services.auth.end_sessions(username).await.map_err(|e| unknown_username(username, &e))?;
    println!("{ended} signed-in session(s) of {username} ended");
    Ok(())
}

async fn list_providers() -> Result<(), String> {
    let services = offline_services().await?;
    for provider in services.auth.list_providers().await.map_err(|e| describe_error(&e))? {
        let line = json!({
            "id": provider.id.as_str(),
            "username": provider.username,
            "name": provider.name,
            "status": provider.status.as_str(),
            "createdAt": format_time(&provider.created_at),
        });
        println!("{line}");
    }
    Ok(())
}

/// What an operator's command on one provider failed with.
fn unknown_username(username: &str, error: &provider_desk::error::AppError) -> String {
    match error {
        provider_desk::error::AppError::NotFound(_) => format!("no provider has the username {username:?}"),
        error => describe_error(error),
    }
}

/// An error for the operator: the detail an internal error carries (never shown to API clients).
fn describe_error(error: &provider_desk::error::AppError) -> String {
    error.operator_detail().into_owned()
}

/// The new password: all of standard input (less one final line break) with `--password-stdin`,
/// else asked for twice on the terminal without echo.
fn read_new_password(from_stdin: bool) -> Result<String, String> {
    let password = if from_stdin {
        let mut input = String::new();
        std::io::stdin()
            .read_to_string(&mut input)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        let input = input.strip_suffix('\n').unwrap_or(&input);
        input.strip_suffix('\r').unwrap_or(input).to_owned()
    } else {
        if !std::io::stdin().is_terminal() {
            return Err("no terminal to ask for the password on: pipe it in with --password-stdin".to_owned());
        }
        let first =
            rpassword::prompt_password("New password: ").map_err(|e| format!("cannot read the password: {e}"))?;
        let again = rpassword::prompt_password("Again: ").map_err(|e| format!("cannot read the password: {e}"))?;
        if first != again {
            return Err("the two passwords differ".to_owned());
        }
        first
    };
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("the password must have at least {MIN_PASSWORD_CHARS} characters"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("the password must have at most {MAX_PASSWORD_BYTES} bytes (bcrypt's limit)"));
    }
    Ok(password)
}

/// Prints the effective configuration and the result of checking each backend. Exit code 1 if
/// the configuration is invalid or a backend fails its check.
async fn check_config() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            println!("configuration: INVALID: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("configuration (secrets hidden):");
    for (name, value) in config.describe() {
        println!("  {name:<36} {value}");
    }
    println!("checks:");
    let checks = provider_desk::app::check_backends(&config).await;
    let mut failed = false;
    for check in &checks {
        failed |= !check.ok;
        println!("  {:<6} {:<10} {}", if check.ok { "ok" } else { "FAILED" }, check.what, check.detail);
    }
    if failed {
        println!("problems found");
        ExitCode::FAILURE
    } else {
        println!("all checks passed");
        ExitCode::SUCCESS
    }
}

/// A future that completes on SIGINT (Ctrl-C) or SIGTERM; the handlers are installed at once.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
