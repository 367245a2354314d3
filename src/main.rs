//! The `provider-desk` command: `serve` (the default) and the operator's sub-commands.

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
use std::process::ExitCode;

const USAGE: &str = "usage: provider-desk [COMMAND]

commands:
  serve                 run the server (the default); configured by environment variables (see the README)
  seed                  add the demo providers demo-a and demo-b (password demo12345) if the store has no provider
  export-schema [PATH]  write the GraphQL SDL to PATH (default: schema.graphql)
  create-provider --username NAME --name NAME --email EMAIL
                  [--contact-person NAME] [--phone PHONE] [--region REGION] [--password-stdin]
                        add a provider account; the password is asked for on the terminal (not echoed),
                        or read from standard input with --password-stdin
  reset-password USERNAME [--password-stdin]
                        set a provider's password, asked for or read as for create-provider
  check-config          print the effective configuration (secrets hidden) and check that the store and
                        the token store answer; exits with 1 on any problem
  run-jobs [JOB...]     run the scheduled jobs once, now (all of them, or those named: customer-status,
                        unresolved-issues, usage-scores, outbox-prune); prints one JSON line per job
  outbox stats          how many outbox deliveries are pending, delivered and dead (one JSON line)
  outbox dead-letters [--limit N]
                        list the dead letters, oldest first, one JSON line each (default limit 100)
  outbox replay (--all | ID...)
                        put dead letters back in the queue with a fresh set of attempts; a running
                        server delivers them within OUTBOX_POLL_INTERVAL_MS
  help                  this text

Every command reads the same environment variables (and .env) as the server.";

/// The shortest password the CLI sets.
const MIN_PASSWORD_CHARS: usize = 8;

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str);
    // The server logs to standard output; the other commands to standard error, as their
    // standard output is their answer.
    let log_target = if matches!(command, None | Some("serve")) { LogTarget::Stdout } else { LogTarget::Stderr };
    let log_format = std::env::var("LOG_FORMAT").ok().and_then(|value| LogFormat::parse(&value)).unwrap_or_default();
    telemetry::init(log_format, log_target);
    let rest = args.get(1..).unwrap_or_default();
    let result = match command {
        None | Some("serve") => serve().await,
        Some("seed") => seed_demo().await,
        Some("export-schema") => export_schema(rest.first().map_or("schema.graphql", String::as_str)),
        Some("create-provider") => create_provider(rest).await,
        Some("reset-password") => reset_password(rest).await,
        Some("check-config") => return check_config().await,
        Some("run-jobs") => run_jobs(rest).await,
        Some("outbox") => outbox(rest).await,
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
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
async fn run_jobs(names: &[String]) -> Result<(), String> {
    let jobs = if names.is_empty() {
        Job::ALL.to_vec()
    } else {
        names
            .iter()
            .map(|name| Job::parse(name).ok_or_else(|| format!("unknown job {name:?}\n\n{USAGE}")))
            .collect::<Result<_, _>>()?
    };
    let services = offline_services().await?;
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

async fn outbox(args: &[String]) -> Result<(), String> {
    let services = offline_services().await?;
    let store = &services.store;
    let failed = |e: provider_desk::error::AppError| format!("{e:?}");
    match args.first().map(String::as_str) {
        Some("stats") => {
            let counts = store.outbox_counts().await.map_err(failed)?;
            println!("{}", json!({ "pending": counts.pending, "delivered": counts.delivered, "dead": counts.dead }));
        }
        Some("dead-letters") => {
            let limit = match args.get(1).map(String::as_str) {
                None => 100,
                Some("--limit") => args
                    .get(2)
                    .and_then(|n| n.parse().ok())
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or("--limit takes a number from 1 to 10000")?,
                Some(other) => return Err(format!("unexpected argument {other:?}\n\n{USAGE}")),
            };
            for entry in store.dead_letters(limit).await.map_err(failed)? {
                println!("{}", dead_letter_line(&entry));
            }
        }
        Some("replay") => {
            let ids = match &args[1..] {
                [] => return Err(format!("name the dead letters to replay, or --all\n\n{USAGE}")),
                [all] if all == "--all" => None,
                ids => Some(
                    ids.iter()
                        .map(|id| Id::parse(id).ok_or_else(|| format!("{id:?} is not a delivery id")))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            let replayed = store.replay_dead_letters(ids.as_deref(), chrono::Utc::now()).await.map_err(failed)?;
            println!("{}", json!({ "replayed": replayed }));
        }
        _ => return Err(format!("outbox needs stats, dead-letters or replay\n\n{USAGE}")),
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

fn export_schema(path: &str) -> Result<(), String> {
    std::fs::write(path, graphql::sdl()).map_err(|e| format!("cannot write {path}: {e}"))?;
    println!("wrote {path}");
    Ok(())
}

/// Options of the form `--name value` and bare flags, with the positional arguments apart.
struct Arguments {
    options: Vec<(String, String)>,
    flags: Vec<String>,
    positional: Vec<String>,
}

impl Arguments {
    fn parse(args: &[String], flags: &[&str], options: &[&str]) -> Result<Arguments, String> {
        let mut parsed = Arguments { options: Vec::new(), flags: Vec::new(), positional: Vec::new() };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            if let Some(name) = arg.strip_prefix("--") {
                let (name, inline) = match name.split_once('=') {
                    Some((name, value)) => (name, Some(value.to_owned())),
                    None => (name, None),
                };
                if flags.contains(&name) && inline.is_none() {
                    parsed.flags.push(name.to_owned());
                } else if options.contains(&name) {
                    let value = match inline {
                        Some(value) => value,
                        None => args.next().ok_or_else(|| format!("--{name} needs a value"))?.clone(),
                    };
                    parsed.options.push((name.to_owned(), value));
                } else {
                    return Err(format!("unknown option --{name}\n\n{USAGE}"));
                }
            } else {
                parsed.positional.push(arg.clone());
            }
        }
        Ok(parsed)
    }

    fn option(&self, name: &str) -> Option<&str> {
        self.options.iter().rev().find(|(n, _)| n == name).map(|(_, value)| value.trim()).filter(|v| !v.is_empty())
    }

    fn required(&self, name: &str) -> Result<String, String> {
        self.option(name).map(str::to_owned).ok_or_else(|| format!("--{name} is required\n\n{USAGE}"))
    }

    fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|flag| flag == name)
    }
}

async fn create_provider(args: &[String]) -> Result<(), String> {
    let args = Arguments::parse(
        args,
        &["password-stdin"],
        &["username", "name", "email", "contact-person", "phone", "region"],
    )?;
    if let Some(extra) = args.positional.first() {
        return Err(format!("unexpected argument {extra:?}\n\n{USAGE}"));
    }
    let username = args.required("username")?;
    let name = args.required("name")?;
    let email = args.required("email")?;
    if username.chars().count() > provider_desk::service::auth::MAX_USERNAME_CHARS
        || username.chars().any(char::is_whitespace)
    {
        return Err("--username: at most 64 characters, no spaces".to_owned());
    }
    if !email.contains('@') {
        return Err(format!("--email: {email:?} is not an email address"));
    }
    let password = read_new_password(args.flag("password-stdin"))?;
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
        contact_person: args.option("contact-person").unwrap_or_default().to_owned(),
        phone: args.option("phone").unwrap_or_default().to_owned(),
        email,
        region: args.option("region").unwrap_or_default().to_owned(),
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

async fn reset_password(args: &[String]) -> Result<(), String> {
    let args = Arguments::parse(args, &["password-stdin"], &[])?;
    let [username] = args.positional.as_slice() else {
        return Err(format!("reset-password takes one USERNAME\n\n{USAGE}"));
    };
    let password = read_new_password(args.flag("password-stdin"))?;
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

/// An error for the operator: the detail an internal error carries (never shown to API clients).
fn describe_error(error: &provider_desk::error::AppError) -> String {
    use provider_desk::error::AppError;
    match error {
        AppError::Internal(detail) | AppError::Unavailable(detail) => detail.clone(),
        other => other.to_string(),
    }
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
