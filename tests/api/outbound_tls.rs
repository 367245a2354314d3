//! Outbound `https://`: the webhook and WeChat go to the test receiver of `integration` serving
//! TLS with a certificate of a certificate authority the test makes (with the `openssl` command
//! line), trusted through `OUTBOUND_CA_FILE`:
//! - with that CA trusted, a signed webhook and a WeChat subscribe message arrive;
//! - with another CA trusted, every attempt fails at the handshake, is retried, and the delivery
//!   ends a dead letter naming the certificate: never a silent success;
//! - a CA file that is no usable certificate stops start-up with the variable's name.

use crate::integration::{cli, customer_says, integrated, pairs, send, Receiver, CS_SECRET};
use crate::support::*;
use axum::serve::Listener;
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{crypto::ring, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

// --- a certificate authority of the test's own ---

/// Runs `openssl ARGS` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl").args(args).current_dir(dir).output().expect("the openssl command runs");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// A certificate authority: `<name>.pem` (the certificate) and `<name>.key` in a directory.
struct Authority {
    dir: PathBuf,
    name: String,
}

impl Authority {
    fn new(dir: &Path, name: &str) -> Authority {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        Authority { dir: dir.to_path_buf(), name: name.to_owned() }
    }

    fn certificate(&self) -> PathBuf {
        self.dir.join(format!("{}.pem", self.name))
    }

    /// A server certificate for 127.0.0.1 signed by this authority: `(certificate, key)` files.
    fn issue(&self, leaf: &str) -> (PathBuf, PathBuf) {
        let dir = &self.dir;
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                &format!("{leaf}.key"),
                "-out",
                &format!("{leaf}.csr"),
            ],
        );
        let extensions = dir.join(format!("{leaf}.ext"));
        std::fs::write(
            &extensions,
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{leaf}.csr"),
                "-CA",
                &format!("{}.pem", self.name),
                "-CAkey",
                &format!("{}.key", self.name),
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &format!("{leaf}.pem"),
                "-extfile",
                &format!("{leaf}.ext"),
            ],
        );
        (dir.join(format!("{leaf}.pem")), dir.join(format!("{leaf}.key")))
    }
}

// --- the receiver's TLS ---

/// The TLS side of a test receiver: its certificate, and how many handshakes failed (a client
/// that did not trust the certificate).
#[derive(Clone)]
pub(crate) struct TlsReceiver {
    acceptor: TlsAcceptor,
    failed_handshakes: Arc<AtomicUsize>,
}

impl TlsReceiver {
    fn new(certificate: &Path, key: &Path) -> TlsReceiver {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(certificate).unwrap().collect::<Result<_, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        TlsReceiver { acceptor: TlsAcceptor::from(Arc::new(config)), failed_handshakes: Arc::default() }
    }

    pub(crate) fn listener(&self, tcp: TcpListener) -> TlsListener {
        TlsListener { tcp, tls: self.clone() }
    }

    fn failed_handshakes(&self) -> usize {
        self.failed_handshakes.load(Ordering::SeqCst)
    }
}

/// Accepts TCP connections and completes their TLS handshake before handing them to axum.
pub(crate) struct TlsListener {
    tcp: TcpListener,
    tls: TlsReceiver,
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        loop {
            let (stream, peer) = Listener::accept(&mut self.tcp).await;
            match self.tls.acceptor.accept(stream).await {
                Ok(stream) => return (stream, peer),
                Err(_) => {
                    self.tls.failed_handshakes.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

// --- the tests ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_and_a_wechat_message_reach_an_https_receiver_of_a_private_ca() {
    let pki = tempfile::tempdir().unwrap();
    let authority = Authority::new(pki.path(), "private-ca");
    let (certificate, key) = authority.issue("receiver");
    let receiver = Receiver::start_tls(TlsReceiver::new(&certificate, &key)).await;
    assert!(receiver.url("").starts_with("https://127.0.0.1:"));
    let base = receiver.url("");
    let ca_file = authority.certificate().display().to_string();
    let mut settings = integrated(
        &receiver,
        &[
            ("WECHAT_APP_ID", "wx-app-1"),
            ("WECHAT_APP_SECRET", "wx-secret-1"),
            ("WECHAT_TEMPLATE_CHAT", "template-chat"),
        ],
    );
    settings.extend([("OUTBOUND_CA_FILE".to_owned(), ca_file), ("WECHAT_API_BASE".to_owned(), base)]);
    let app = TestApp::spawn_configured(&pairs(&settings)).await;
    let token = app.login(DEMO_A).await;

    let reply = send(&app, &token, "c003", "您好，已收到").await;
    let received = receiver.wait_for("a webhook over https", |r| !r.is_empty()).await;
    let webhook = received.iter().find(|r| r.path == "/hooks/cs").expect("the webhook");
    assert!(webhook.signed && webhook.status == 200, "{webhook:?}");
    assert_eq!(webhook.json()["data"]["messageId"], reply);

    let bind = "mutation($code: String!) { bindWechat(code: $code) }";
    assert_eq!(app.data(&token, bind, json!({ "code": "code-tls" })).await["bindWechat"], true);
    customer_says(&app, "pc-tls-1", "c001", "通过 https 到达了吗").await;
    let received = receiver
        .wait_for("a subscribe message over https", |r| r.iter().any(|r| r.path.ends_with("/subscribe/send")))
        .await;
    let message = received.iter().find(|r| r.path.ends_with("/subscribe/send")).unwrap().json();
    assert_eq!(
        (message["touser"].as_str(), message["data"]["thing2"]["value"].as_str()),
        (Some("openid-code-tls"), Some("通过 https 到达了吗"))
    );
    assert!(received.iter().all(|r| r.path != "/hooks/cs" || r.signed), "signed with {CS_SECRET:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_whose_certificate_no_trusted_ca_signed_gets_nothing_and_the_delivery_ends_a_dead_letter() {
    let pki = tempfile::tempdir().unwrap();
    let trusted = Authority::new(pki.path(), "trusted-ca");
    let other = Authority::new(pki.path(), "other-ca");
    let (certificate, key) = other.issue("impostor");
    let tls = TlsReceiver::new(&certificate, &key);
    let receiver = Receiver::start_tls(tls.clone()).await;
    let ca_file = trusted.certificate().display().to_string();
    let mut settings = integrated(&receiver, &[("OUTBOX_MAX_ATTEMPTS", "3")]);
    settings.push(("OUTBOUND_CA_FILE".to_owned(), ca_file));
    let app = TestApp::spawn_configured(&pairs(&settings)).await;
    let token = app.login(DEMO_A).await;

    send(&app, &token, "c004", "不该送达").await;
    let dead = loop {
        let dead = cli(&app, &["outbox", "dead-letters"]).await;
        if !dead.is_empty() {
            break dead;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((dead.len(), dead[0]["attempts"].clone()), (1, json!(3)), "{dead:?}");
    let error = dead[0]["lastError"].as_str().unwrap_or_default();
    assert!(error.contains("certificate") && error.contains("127.0.0.1"), "{error}");
    assert!(receiver.received().is_empty(), "nothing was delivered to an untrusted receiver");
    assert!(tls.failed_handshakes() >= 3, "every attempt reached the handshake and failed there");
    let counts = cli(&app, &["outbox", "stats"]).await;
    assert_eq!((counts[0]["delivered"].clone(), counts[0]["dead"].clone()), (json!(0), json!(1)), "{counts:?}");
}

#[tokio::test]
async fn a_ca_file_that_holds_no_usable_certificate_stops_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken-ca.pem");
    std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
        .unwrap();
    let not_pem = dir.path().join("not-pem.txt");
    std::fs::write(&not_pem, "just some text").unwrap();
    for file in [&broken, &not_pem, &dir.path().join("missing.pem")] {
        let path = file.display().to_string();
        let env = with_settings(process_env(&Backend::Sqlite, dir.path()), &[("OUTBOUND_CA_FILE", path.as_str())]);
        let (status, stderr) = start_expecting_exit(&env, dir.path()).await;
        assert!(!status.success(), "the server refused to start with {path}");
        assert!(stderr.contains("OUTBOUND_CA_FILE") && stderr.contains(&path), "{stderr}");
    }
}

/// Starts the server binary and waits for it to exit (killed, and the test failed, if it is
/// still running after a minute: it started when it should not have).
async fn start_expecting_exit(env: &[(String, String)], dir: &Path) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(BINARY)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the server binary starts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if tokio::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server started although OUTBOUND_CA_FILE is unusable");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}
