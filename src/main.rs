//! The `provider-desk` command: `serve` (the default), `seed`, `export-schema`.

use provider_desk::app::{build_services, Application};
use provider_desk::config::Config;
use provider_desk::telemetry::{self, LogFormat, LogTarget};
use provider_desk::{graphql, seed};
use std::process::ExitCode;

const USAGE: &str = "usage: provider-desk [serve | seed | export-schema [PATH] | help]

  serve           run the server (the default); configured by BIND, PORT, DATA_DIR, JWT_SECRET, SEED_DEMO,
                  MONGODB_URI, MONGODB_DB, REDIS_URL (see the README)
  seed            add the demo providers demo-a and demo-b (password demo12345) if they are missing
  export-schema   write the GraphQL SDL to PATH (default: schema.graphql)";

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
    let result = match command {
        None | Some("serve") => serve().await,
        Some("seed") => seed_demo().await,
        Some("export-schema") => export_schema(args.get(1).map_or("schema.graphql", String::as_str)),
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
    // Listen for the signals before anything else, so a SIGTERM during start-up is not lost.
    let signal = shutdown_signal().map_err(|e| format!("cannot listen for signals: {e}"))?;
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let application = Application::build(config).await.map_err(|e| e.to_string())?;
    application.run_until(signal).await.map_err(|e| e.to_string())
}

async fn seed_demo() -> Result<(), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let services = build_services(&config).await.map_err(|e| e.to_string())?;
    let seeded = seed::seed_demo_if_empty(&services).await.map_err(|e| e.to_string())?;
    println!("{}", if seeded { "demo data seeded" } else { "the store already holds providers; nothing seeded" });
    Ok(())
}

fn export_schema(path: &str) -> Result<(), String> {
    std::fs::write(path, graphql::sdl()).map_err(|e| format!("cannot write {path}: {e}"))?;
    println!("wrote {path}");
    Ok(())
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
