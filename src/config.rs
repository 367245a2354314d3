//! Configuration: one typed struct read from the environment (and `.env`, if present).
//!
//! Names and defaults follow the project conventions (`BIND`, `PORT`, `DATA_DIR`, `JWT_SECRET`,
//! `SEED_DEMO`, ...). A bad value stops start-up with a message that names the variable.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: IpAddr,
    pub port: u16,
    pub data_dir: PathBuf,
    /// `None`: use (or create) the secret kept in `DATA_DIR`.
    pub jwt_secret: Option<String>,
    pub seed_demo: bool,
    pub bcrypt_cost: u32,
    pub mongodb_uri: Option<String>,
    pub redis_url: Option<String>,
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable}={value:?}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// The shortest `JWT_SECRET` accepted: HS256 needs at least 256 bits of key.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

impl Config {
    /// Reads the configuration from the process environment, after loading `.env` if there is one.
    pub fn from_env() -> Result<Config, ConfigError> {
        let _ = dotenvy::dotenv();
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let bind = match get("BIND") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(value) => value.parse().map_err(|_| ConfigError {
                variable: "BIND",
                value,
                reason: "expected an IP address such as 127.0.0.1 or 0.0.0.0",
            })?,
        };
        let port = match get("PORT") {
            None => 8080,
            Some(value) => value.parse().map_err(|_| ConfigError {
                variable: "PORT",
                value,
                reason: "expected a port number from 0 to 65535",
            })?,
        };
        let seed_demo = match get("SEED_DEMO").as_deref() {
            None | Some("true") | Some("1") | Some("yes") => true,
            Some("false") | Some("0") | Some("no") => false,
            Some(other) => {
                return Err(ConfigError {
                    variable: "SEED_DEMO",
                    value: other.to_owned(),
                    reason: "expected true or false",
                })
            }
        };
        let bcrypt_cost = match get("BCRYPT_COST") {
            None => 10,
            Some(value) => value.parse().ok().filter(|c| (4..=16).contains(c)).ok_or(ConfigError {
                variable: "BCRYPT_COST",
                value,
                reason: "expected a whole number from 4 to 16",
            })?,
        };
        let jwt_secret = get("JWT_SECRET");
        if let Some(secret) = &jwt_secret {
            if secret.len() < MIN_JWT_SECRET_BYTES {
                return Err(ConfigError {
                    variable: "JWT_SECRET",
                    value: "<hidden>".to_owned(),
                    reason: "must be at least 32 bytes long",
                });
            }
        }
        Ok(Config {
            bind,
            port,
            data_dir: PathBuf::from(get("DATA_DIR").unwrap_or_else(|| "./data".to_owned())),
            jwt_secret,
            seed_demo,
            bcrypt_cost,
            mongodb_uri: get("MONGODB_URI"),
            redis_url: get("REDIS_URL"),
        })
    }

    pub fn listen_address(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_follow_the_conventions() {
        let config = config(&[]).unwrap();
        assert_eq!(config.listen_address().to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert!(config.seed_demo);
        assert!(config.jwt_secret.is_none());
    }

    #[test]
    fn bad_values_name_the_variable() {
        assert_eq!(config(&[("PORT", "eighty")]).unwrap_err().variable, "PORT");
        assert_eq!(config(&[("BIND", "localhost:1")]).unwrap_err().variable, "BIND");
        assert_eq!(config(&[("SEED_DEMO", "maybe")]).unwrap_err().variable, "SEED_DEMO");
        assert_eq!(config(&[("JWT_SECRET", "short")]).unwrap_err().variable, "JWT_SECRET");
        assert!(!config(&[("SEED_DEMO", "false")]).unwrap().seed_demo);
    }
}
