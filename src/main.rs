//! The `provider-desk` command: `serve` (the default), `seed`, `export-schema`, `run-jobs`,
//! `outbox`.

use provider_desk::app::{build_services, Application};
use provider_desk::config::Config;
use provider_desk::domain::{format_time, new_id, Id, OutboxEntry};
use provider_desk::service::jobs::Job;
use provider_desk::service::Services;
use provider_desk::{graphql, seed};
use serde_json::json;
use std::process::ExitCode;

const USAGE: &str = "usage: provider-desk [serve | seed | export-schema [PATH] | run-jobs [JOB...] | outbox ... | help]

  serve           run the server (the default); configured by BIND, PORT, DATA_DIR, JWT_SECRET, SEED_DEMO,
                  MONGODB_URI, MONGODB_DB, REDIS_URL and the integration variables (see the README)
  seed            add the demo providers demo-a and demo-b (password demo12345) if they are missing
  export-schema   write the GraphQL SDL to PATH (default: schema.graphql)
  run-jobs [JOB...]
                  run the scheduled jobs once, now (all of them, or those named: customer-status,
                  unresolved-issues, usage-scores, outbox-prune); prints one JSON line per job
  outbox stats    how many outbox deliveries are pending, delivered and dead (one JSON line)
  outbox dead-letters [--limit N]
                  list the dead letters, oldest first, one JSON line each (default limit 100)
  outbox replay (--all | ID...)
                  put dead letters back in the queue with a fresh set of attempts; a running server
                  delivers them within OUTBOX_POLL_INTERVAL_MS";

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None | Some("serve") => serve().await,
        Some("seed") => seed_demo().await,
        Some("export-schema") => export_schema(args.get(1).map_or("schema.graphql", String::as_str)),
        Some("run-jobs") => run_jobs(&args[1..]).await,
        Some("outbox") => outbox(&args[1..]).await,
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

async fn serve() -> Result<(), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let application = Application::build(config).await.map_err(|e| e.to_string())?;
    application.run_until(shutdown_signal()).await.map_err(|e| e.to_string())
}

async fn seed_demo() -> Result<(), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let services = build_services(&config).await.map_err(|e| e.to_string())?;
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

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
