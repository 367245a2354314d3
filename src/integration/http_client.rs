//! The HTTP client of the outbound integrations (the PC customer-service webhook, WeChat), and
//! the one way their transport errors become text.
//!
//! TLS: `https://` goes through rustls with the ring provider that the MongoDB driver already
//! brings, trusting the public web PKI roots compiled into the binary (webpki-roots, so an image
//! without a CA bundle works) plus, with `OUTBOUND_CA_FILE`, a private CA. `http://` stays for a
//! gateway on the local network. A certificate the roots do not vouch for fails the attempt like
//! a refused connection: it is retried, and in the end a dead letter.
//!
//! Errors: WeChat takes its app secret, the access token and the login code in the query string,
//! and reqwest's error text contains the whole URL. So [`describe`] never shows reqwest's URL: it
//! drops it from the error (`without_url`) and names the address itself, from the scheme, host,
//! port and path only. The text of an outbound failure, logged and stored in `outbox.last_error`,
//! is built from nothing else.

use crate::config::{ConfigError, OutboundCa};
use std::time::Duration;

/// The client every outbound integration shares: `timeout` for a whole request and for its
/// connection, no redirects (a 3xx is a failed attempt), `https://` verified against the web PKI
/// roots and the private CA of `ca`. A CA file that is not a usable certificate stops start-up
/// with the variable's name.
pub fn build(ca: Option<&OutboundCa>, timeout: Duration) -> Result<reqwest::Client, ConfigError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("provider-desk/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = ca {
        let refused = |reason: String| ConfigError::new(OutboundCa::VARIABLE, ca.path.clone(), reason);
        let certificates = reqwest::Certificate::from_pem_bundle(&ca.pem)
            .map_err(|error| refused(format!("is not a PEM certificate bundle: {}", causes(&error))))?;
        if certificates.is_empty() {
            return Err(refused("holds no PEM certificate".to_owned()));
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    match (builder.build(), ca) {
        (Ok(client), _) => Ok(client),
        (Err(error), Some(ca)) => Err(ConfigError::new(
            OutboundCa::VARIABLE,
            ca.path.clone(),
            format!("cannot be used as a certificate authority: {}", causes(&error)),
        )),
        (Err(error), None) => panic!("the outbound HTTP client builds without a private CA: {}", causes(&error)),
    }
}

/// What went wrong with an outbound request, and where: `"<what> (<address>): <causes>"`, the
/// address without its query string, user or fragment, so no secret carried there can show.
pub fn describe(error: reqwest::Error) -> String {
    let address = error.url().map(public_part).unwrap_or_else(|| "an outbound address".to_owned());
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_decode() || error.is_body() {
        "could not read the answer"
    } else {
        "the request failed"
    };
    format!("{what} ({address}): {}", causes(&error.without_url()))
}

/// The error and its causes, which reqwest keeps in its source chain, joined with `: `.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `scheme://host:port/path` of a URL: what says where a request went, and nothing it carried.
pub fn public_part(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
        None => format!("{}://{host}{}", url.scheme(), url.path()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_part_of_an_address_has_no_query_user_or_fragment() {
        let url = url::Url::parse("https://user:pw@api.example:8443/cgi-bin/token?secret=s3cret#f").unwrap();
        assert_eq!(public_part(&url), "https://api.example:8443/cgi-bin/token");
        let url = url::Url::parse("http://gateway/sns/jscode2session?js_code=abc").unwrap();
        assert_eq!(public_part(&url), "http://gateway/sns/jscode2session");
    }

    #[tokio::test]
    async fn a_refused_connection_is_described_without_the_query() {
        let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = unused.local_addr().unwrap().port();
        drop(unused);
        let client = build(None, Duration::from_secs(5)).unwrap();
        let error = client
            .get(format!("http://127.0.0.1:{port}/cgi-bin/token"))
            .query(&[("secret", "app-secret-value")])
            .send()
            .await
            .unwrap_err();
        let text = describe(error);
        assert!(!text.contains("app-secret-value") && !text.contains("secret="), "{text}");
        assert!(text.starts_with(&format!("could not connect (http://127.0.0.1:{port}/cgi-bin/token)")), "{text}");
    }

    #[test]
    fn a_ca_file_that_is_not_a_certificate_is_refused_by_name() {
        let garbage = b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
        let ca = OutboundCa { path: "/etc/ca.pem".to_owned(), pem: garbage.to_vec() };
        let error = build(Some(&ca), Duration::from_secs(1)).unwrap_err();
        assert_eq!((error.variable, error.value.as_str()), ("OUTBOUND_CA_FILE", "/etc/ca.pem"));
    }
}
