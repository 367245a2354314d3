//! The server as an operator runs it: the built binary started as a process of its own, with its
//! standard output and error collected line by line, stopped with a signal like a process manager
//! would. Used by the tests of what only a whole process shows: `/metrics` counts (the metrics
//! registry is per process), the log lines, graceful shutdown, and the CLI.

use super::{database_name, drop_database, Backend, TEST_JWT_SECRET};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

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
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub address: String,
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
            address: String::new(),
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
        server.address = format!("http://{address}");
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

    /// Sends a GraphQL operation and returns the whole response body.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = reqwest::Client::new()
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the server answers").json().await.expect("a JSON answer")
    }

    /// Signs in as a demo provider over GraphQL and returns the access token.
    pub async fn login(&self, username: &str) -> String {
        let body = self
            .graphql(
                None,
                "mutation Login($u: String!, $p: String!) { login(username: $u, password: $p) { token } }",
                json!({ "u": username, "p": super::DEMO_PASSWORD }),
            )
            .await;
        body["data"]["login"]["token"].as_str().unwrap_or_else(|| panic!("login failed: {body}")).to_owned()
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let response = reqwest::get(format!("{}/metrics", self.address)).await.expect("the server answers");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "Prometheus text: {content_type}");
        response.text().await.expect("a text body")
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

/// A minimal `graphql-transport-ws` client.
pub struct Subscriber {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl Subscriber {
    /// Connects to `address` (`http://host:port`), signs in with `token` and waits for the ack.
    pub async fn connect(address: &str, token: &str) -> Subscriber {
        let url = format!("{}/graphql/ws", address.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request().expect("a WebSocket request");
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("graphql-transport-ws"));
        let (socket, _) = tokio_tungstenite::connect_async(request).await.expect("the WebSocket handshake succeeds");
        let mut subscriber = Subscriber { socket };
        subscriber
            .send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }))
            .await;
        let ack = subscriber.next_message().await.expect("an answer to connection_init");
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        subscriber
    }

    pub async fn send(&mut self, message: Value) {
        self.socket.send(Message::Text(message.to_string().into())).await.expect("the message is sent");
    }

    /// Starts a subscription.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({ "type": "subscribe", "id": id, "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// The next protocol message (pings answered and skipped); `None` once the server closed.
    pub async fn next_message(&mut self) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("a message from the server within 10 s");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let message: Value = serde_json::from_str(text.as_str()).expect("the server sends JSON");
                    match message["type"].as_str() {
                        Some("ping") => self.send(json!({ "type": "pong" })).await,
                        Some("pong") => {}
                        _ => return Some(message),
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Waits for the server's close frame and answers its code.
    pub async fn close_code(&mut self) -> u16 {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("the server closes within 10 s");
            match frame {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
                Some(Ok(Message::Close(None))) => panic!("a close frame without a code"),
                Some(Ok(_)) => {}
                Some(Err(error)) => panic!("the connection failed before a close frame: {error}"),
                None => panic!("the connection ended without a close frame"),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
