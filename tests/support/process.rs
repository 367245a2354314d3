//! The server as an operator runs it: the built binary started as a process of its own, with its
//! standard output and error collected line by line, stopped with a signal like a process manager
//! would. Used by the tests of what only a whole process shows: `/metrics` counts (the metrics
//! registry is per process), the log lines, graceful shutdown, the CLI, and two processes that
//! share one store and one Redis.

use super::{database_name, demo_data, drop_database, Api, Backend, TEST_JWT_SECRET};
use provider_desk::config::Config;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_provider-desk");

/// The environment a server or CLI process of the test backend gets in `data_dir`: nothing of the
/// test runner's own environment but `PATH`, so no stray setting leaks in.
pub fn process_env(backend: &Backend, data_dir: &Path) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
        ("RUST_LOG".into(), "info".into()),
        ("BIND".into(), "127.0.0.1".into()),
        ("PORT".into(), "0".into()),
        ("DATA_DIR".into(), data_dir.display().to_string()),
        ("BCRYPT_COST".into(), "4".into()),
        ("JWT_SECRET".into(), TEST_JWT_SECRET.into()),
        ("LOG_FORMAT".into(), "json".into()),
    ];
    if let Backend::Mongo { mongodb_uri, redis_url } = backend {
        env.push(("MONGODB_URI".into(), mongodb_uri.clone()));
        env.push(("MONGODB_DB".into(), database_name(data_dir)));
        env.push(("REDIS_URL".into(), redis_url.clone()));
    }
    env
}

/// `env` with `extra` applied: a pair replaces the variable of the same name; a pair with an
/// empty value removes it.
pub fn with_settings(mut env: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    for (name, value) in extra {
        env.retain(|(n, _)| n != name);
        if !value.is_empty() {
            env.push((name.to_string(), value.to_string()));
        }
    }
    env
}

/// Runs the binary with `args` to completion, feeding it `stdin`, in `dir` (so no `.env` of the
/// repository is read).
pub fn run_cli(env: &[(String, String)], dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BINARY)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    {
        let mut input = child.stdin.take().expect("a stdin pipe");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("stdin takes the input");
        }
    }
    child.wait_with_output().expect("the command finishes")
}

/// A server process, killed when dropped (if still running); its test database goes with it.
/// Dereferences to its [`Api`] (`server.address` is `http://127.0.0.1:PORT`).
pub struct ServerProcess {
    child: Child,
    pub api: Api,
    pub data_dir: PathBuf,
    backend: Backend,
    _temp: Option<tempfile::TempDir>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts a seeded server on a fresh store of the test backend, with `extra` settings.
    pub async fn start(extra: &[(&str, &str)]) -> ServerProcess {
        let temp = tempfile::tempdir().expect("a data directory");
        let backend = Backend::from_env();
        let env = with_settings(process_env(&backend, temp.path()), extra);
        let mut server = ServerProcess::start_with(&env, temp.path(), backend).await;
        server._temp = Some(temp);
        server
    }

    /// Starts the server with exactly `env`, and waits until it answers `/healthz`.
    pub async fn start_with(env: &[(String, String)], data_dir: &Path, backend: Backend) -> ServerProcess {
        copy_demo_data_if_seeding(env);
        let mut child = Command::new(BINARY)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server binary starts");
        let stdout = collect_lines(child.stdout.take().expect("a stdout pipe"));
        let stderr = collect_lines(child.stderr.take().expect("a stderr pipe"));
        let mut server = ServerProcess {
            child,
            api: Api::new(String::new()),
            data_dir: data_dir.to_path_buf(),
            backend,
            _temp: None,
            stdout,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = loop {
            if let Some(address) = server.listening_address() {
                break address;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the server exited with {status} before listening; stderr: {:?}", server.stderr_lines());
            }
            assert!(Instant::now() < deadline, "the server did not start; stdout: {:?}", server.stdout_lines());
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        server.api = Api::new(format!("http://{address}"));
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client.get(format!("{}/healthz", server.address)).send().await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server process does not answer on {}", server.address);
    }

    /// The address of the `provider-desk listening` log line (JSON or text).
    fn listening_address(&self) -> Option<String> {
        self.stdout_lines().iter().find(|line| line.contains("provider-desk listening")).and_then(|line| {
            match serde_json::from_str::<Value>(line) {
                Ok(value) => value["address"].as_str().map(str::to_owned),
                Err(_) => line.split("address=").nth(1)?.split_whitespace().next().map(str::to_owned),
            }
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every line the process has written to standard output so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{signal} {} works", self.pid());
    }

    /// Waits up to `limit` for the process to exit.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the readers take the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl std::ops::Deref for ServerProcess {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let (Some(_), Backend::Mongo { mongodb_uri, .. }) = (&self._temp, &self.backend) {
            drop_database(mongodb_uri, &database_name(&self.data_dir));
        }
    }
}

/// Copies the demo data ([`demo_data`]) into the MongoDB database of a server process with `env`
/// that would seed it.
fn copy_demo_data_if_seeding(env: &[(String, String)]) {
    let setting = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, value)| value.clone());
    // A test of a setting the server refuses: it seeds nothing either.
    let Ok(config) = Config::from_lookup(setting) else { return };
    if let (Some(mongodb_uri), Some(redis_url)) = (config.mongodb_uri.clone(), config.redis_url.clone()) {
        if config.demo_seeding().seeds() {
            demo_data::copy_demo_data_if_empty(&Backend::Mongo { mongodb_uri, redis_url }, &config.mongo.database);
        }
    }
}

fn collect_lines(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            match line {
                Ok(line) => sink.lock().unwrap().push(line),
                Err(_) => break,
            }
        }
    });
    lines
}
