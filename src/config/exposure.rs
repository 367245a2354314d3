//! What a server on a public address does differently: whether the demo accounts are seeded
//! (`SEED_DEMO`) and who may read `/metrics` (`METRICS_TOKEN`, `METRICS_BIND`).
//!
//! The design choice: the safe answer depends on the address the server listens on, so each rule
//! is one small pure function of the bind address and the settings ([`demo_seeding`],
//! [`MetricsSettings::access`]), tested here, which the application applies and logs. A loopback
//! bind (`cargo run --release`, the default) keeps the one-command local start: demo data and an
//! open `/metrics`. Any other address (`0.0.0.0` in the Docker image) seeds nothing and refuses
//! `/metrics` unless the operator said otherwise explicitly.

use super::reader::{ConfigError, Reader};
use std::net::{IpAddr, SocketAddr};

/// The shortest `METRICS_TOKEN` accepted.
pub const MIN_METRICS_TOKEN_BYTES: usize = 16;

/// `SEED_DEMO` as the operator set it: the rule needs to tell "not set" from "true".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedDemo {
    Unset,
    True,
    False,
}

impl SeedDemo {
    pub(super) fn read(env: &Reader) -> Result<SeedDemo, ConfigError> {
        let setting = env.optional_parsed("SEED_DEMO", "expected true or false", |value| match value {
            "true" | "1" | "yes" => Some(SeedDemo::True),
            "false" | "0" | "no" => Some(SeedDemo::False),
            _ => None,
        })?;
        Ok(setting.unwrap_or(SeedDemo::Unset))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SeedDemo::Unset => "not set",
            SeedDemo::True => "true",
            SeedDemo::False => "false",
        }
    }
}

/// What to do about the demo accounts at start-up, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoSeeding {
    /// Seed an empty store: the server listens on loopback only (and `SEED_DEMO` is not `false`).
    OnLoopback,
    /// Seed an empty store, with a warning at every start: a public address and `SEED_DEMO=true`.
    OnPublicAddress,
    /// Seed nothing: `SEED_DEMO=false`.
    TurnedOff,
    /// Seed nothing: a public address and `SEED_DEMO` not set.
    NotOnPublicAddress,
}

impl DemoSeeding {
    pub fn seeds(self) -> bool {
        matches!(self, DemoSeeding::OnLoopback | DemoSeeding::OnPublicAddress)
    }

    /// What is done and why, for the start-up log and `check-config`.
    pub fn explain(self) -> &'static str {
        match self {
            DemoSeeding::OnLoopback => "an empty store gets the demo accounts: the server listens on loopback only",
            DemoSeeding::OnPublicAddress => {
                "SEED_DEMO=true: an empty store gets the demo accounts (password demo12345) although the server \
                 listens on a public address; anyone who reaches it can sign in with them"
            }
            DemoSeeding::TurnedOff => "no demo accounts: SEED_DEMO=false",
            DemoSeeding::NotOnPublicAddress => {
                "no demo accounts: the server listens on a public address and SEED_DEMO is not set \
                 (SEED_DEMO=true seeds them anyway)"
            }
        }
    }
}

/// The demo-seeding rule: by default only on a loopback bind; on any other address only when
/// `SEED_DEMO=true` says so; never with `SEED_DEMO=false`.
pub fn demo_seeding(bind: IpAddr, setting: SeedDemo) -> DemoSeeding {
    match (setting, is_loopback(bind)) {
        (SeedDemo::False, _) => DemoSeeding::TurnedOff,
        (_, true) => DemoSeeding::OnLoopback,
        (SeedDemo::True, false) => DemoSeeding::OnPublicAddress,
        (SeedDemo::Unset, false) => DemoSeeding::NotOnPublicAddress,
    }
}

/// Whether `address` is reachable from this host only (`127.0.0.0/8`, `::1`, and IPv4-mapped
/// loopback). `0.0.0.0` and `::` listen on every interface: public.
pub fn is_loopback(address: IpAddr) -> bool {
    address.to_canonical().is_loopback()
}

/// Who may read `/metrics`.
#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// `METRICS_TOKEN`: scrapers send `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// `METRICS_BIND`: a second listener (`127.0.0.1:9090`) that serves `/metrics` alone.
    pub bind: Option<SocketAddr>,
}

/// How one listener answers `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsAccess {
    /// To anyone who can reach the listener.
    Open,
    /// With `Authorization: Bearer <token>`; 401 without.
    Token(String),
    /// 403 to everyone: a public bind with neither `METRICS_TOKEN` nor `METRICS_BIND`.
    Refused,
    /// Not at all (404): `METRICS_BIND` serves it on a listener of its own.
    NotServed,
}

impl MetricsSettings {
    pub(super) fn read(env: &Reader) -> Result<MetricsSettings, ConfigError> {
        let token = env.secret("METRICS_TOKEN", MIN_METRICS_TOKEN_BYTES)?;
        if token.as_deref().is_some_and(|token| !token.bytes().all(|b| b.is_ascii_graphic())) {
            return Err(ConfigError::new("METRICS_TOKEN", "<hidden>", "only visible ASCII characters, no spaces"));
        }
        let bind =
            env.optional_parsed("METRICS_BIND", "expected an address and port such as 127.0.0.1:9090", |value| {
                value.parse().ok()
            })?;
        Ok(MetricsSettings { token, bind })
    }

    /// How the main listener, bound to `bind`, answers `/metrics`: not at all when `METRICS_BIND`
    /// gives it a listener of its own; with the token when `METRICS_TOKEN` is set; else open on a
    /// loopback bind and refused on a public one.
    pub fn access(&self, bind: IpAddr) -> MetricsAccess {
        match (&self.bind, &self.token) {
            (Some(_), _) => MetricsAccess::NotServed,
            (None, Some(token)) => MetricsAccess::Token(token.clone()),
            (None, None) if is_loopback(bind) => MetricsAccess::Open,
            (None, None) => MetricsAccess::Refused,
        }
    }

    /// How the `METRICS_BIND` listener answers `/metrics`: the operator chose its address, so it
    /// is open unless `METRICS_TOKEN` is set too.
    pub fn own_listener_access(&self) -> MetricsAccess {
        self.token.clone().map_or(MetricsAccess::Open, MetricsAccess::Token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPBACK: [&str; 4] = ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"];
    const PUBLIC: [&str; 4] = ["0.0.0.0", "::", "10.0.0.5", "203.0.113.7"];

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_loopback_bind_seeds_unless_seeding_is_turned_off() {
        for bind in LOOPBACK {
            assert_eq!(demo_seeding(ip(bind), SeedDemo::Unset), DemoSeeding::OnLoopback, "{bind}");
            assert_eq!(demo_seeding(ip(bind), SeedDemo::True), DemoSeeding::OnLoopback, "{bind}");
            assert_eq!(demo_seeding(ip(bind), SeedDemo::False), DemoSeeding::TurnedOff, "{bind}");
        }
    }

    #[test]
    fn a_public_bind_seeds_only_when_told_to_explicitly() {
        for bind in PUBLIC {
            assert_eq!(demo_seeding(ip(bind), SeedDemo::Unset), DemoSeeding::NotOnPublicAddress, "{bind}");
            assert!(!demo_seeding(ip(bind), SeedDemo::Unset).seeds());
            assert_eq!(demo_seeding(ip(bind), SeedDemo::True), DemoSeeding::OnPublicAddress, "{bind}");
            assert!(demo_seeding(ip(bind), SeedDemo::True).seeds());
            assert_eq!(demo_seeding(ip(bind), SeedDemo::False), DemoSeeding::TurnedOff, "{bind}");
        }
    }

    #[test]
    fn metrics_are_open_on_loopback_and_refused_on_a_public_bind_with_nothing_set() {
        let nothing = MetricsSettings { token: None, bind: None };
        for bind in LOOPBACK {
            assert_eq!(nothing.access(ip(bind)), MetricsAccess::Open, "{bind}");
        }
        for bind in PUBLIC {
            assert_eq!(nothing.access(ip(bind)), MetricsAccess::Refused, "{bind}");
        }
    }

    #[test]
    fn a_token_or_a_listener_of_their_own_opens_metrics_on_any_bind() {
        let token = MetricsSettings { token: Some("t".repeat(16)), bind: None };
        let own = MetricsSettings { token: None, bind: Some("127.0.0.1:9090".parse().unwrap()) };
        let both = MetricsSettings { token: Some("t".repeat(16)), bind: Some("0.0.0.0:9090".parse().unwrap()) };
        for bind in LOOPBACK.into_iter().chain(PUBLIC) {
            assert_eq!(token.access(ip(bind)), MetricsAccess::Token("t".repeat(16)), "{bind}");
            assert_eq!(own.access(ip(bind)), MetricsAccess::NotServed, "{bind}");
            assert_eq!(both.access(ip(bind)), MetricsAccess::NotServed, "{bind}");
        }
        assert_eq!(own.own_listener_access(), MetricsAccess::Open);
        assert_eq!(both.own_listener_access(), MetricsAccess::Token("t".repeat(16)));
    }
}
