//! The typed reader of configuration variables: every setting is read through one of its methods,
//! so each kind of value (a number in a range, milliseconds, a flag, a secret, a URL, a list of
//! networks) is parsed and refused in one place, with an error that names the variable.
//!
//! The reader wraps an injectable lookup (`Fn(&str) -> Option<String>`): the process environment
//! in production, a map in tests. A value is trimmed, and an empty one counts as unset, so
//! `PORT=` in a `.env` file means "the default", not "invalid".

use super::security::{IpNet, Rate};
use std::borrow::Cow;
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable}={value:?}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    /// The value as given, or `<hidden>` for a secret.
    pub value: String,
    pub reason: Cow<'static, str>,
}

impl ConfigError {
    pub fn new(variable: &'static str, value: impl Into<String>, reason: impl Into<Cow<'static, str>>) -> ConfigError {
        ConfigError { variable, value: value.into(), reason: reason.into() }
    }
}

/// Reads variables through a lookup; see the module documentation.
pub struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Reader<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Reader<'a> {
        Reader { lookup }
    }

    /// The value, trimmed; `None` when unset or empty.
    pub fn optional(&self, variable: &str) -> Option<String> {
        (self.lookup)(variable).map(|value| value.trim().to_owned()).filter(|value| !value.is_empty())
    }

    /// The value, or `default` when unset.
    pub fn string(&self, variable: &str, default: &str) -> String {
        self.optional(variable).unwrap_or_else(|| default.to_owned())
    }

    /// A value that must be set; `why` says what needs it.
    pub fn required(&self, variable: &'static str, why: &'static str) -> Result<String, ConfigError> {
        self.optional(variable).ok_or_else(|| ConfigError::new(variable, "", why))
    }

    /// `true`, `1` or `yes`; `false`, `0` or `no`.
    pub fn bool(&self, variable: &'static str, default: bool) -> Result<bool, ConfigError> {
        self.parsed(variable, default, "expected true or false", |value| match value {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        })
    }

    /// The value as `parse` reads it (`None` from `parse` is refused with `reason`), or `default`.
    pub fn parsed<T>(
        &self,
        variable: &'static str,
        default: T,
        reason: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        Ok(self.optional_parsed(variable, reason, parse)?.unwrap_or(default))
    }

    /// As [`Reader::parsed`], with no default.
    pub fn optional_parsed<T>(
        &self,
        variable: &'static str,
        reason: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        match self.optional(variable) {
            None => Ok(None),
            Some(value) => parse(&value).map(Some).ok_or_else(|| ConfigError::new(variable, value, reason)),
        }
    }

    /// A whole number within `range` (the error names it), or `default` (taken as it is).
    pub fn number_in<T: Number>(
        &self,
        variable: &'static str,
        range: RangeInclusive<T>,
        default: T,
    ) -> Result<T, ConfigError> {
        Ok(self.amount(variable, &range, "a whole number")?.unwrap_or(default))
    }

    /// As [`Reader::number_in`], with no default.
    pub fn optional_number_in<T: Number>(
        &self,
        variable: &'static str,
        range: RangeInclusive<T>,
    ) -> Result<Option<T>, ConfigError> {
        self.amount(variable, &range, "a whole number")
    }

    /// A duration given in milliseconds, within `range`.
    pub fn millis(
        &self,
        variable: &'static str,
        range: RangeInclusive<u64>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        Ok(self.optional_millis(variable, range)?.unwrap_or(default))
    }

    /// As [`Reader::millis`], with no default.
    pub fn optional_millis(
        &self,
        variable: &'static str,
        range: RangeInclusive<u64>,
    ) -> Result<Option<Duration>, ConfigError> {
        Ok(self.amount(variable, &range, "milliseconds")?.map(Duration::from_millis))
    }

    /// A duration given in seconds, within `range`.
    pub fn secs(
        &self,
        variable: &'static str,
        range: RangeInclusive<u64>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        Ok(self.amount(variable, &range, "seconds")?.map_or(default, Duration::from_secs))
    }

    /// A duration given in days, within `range`.
    pub fn days(
        &self,
        variable: &'static str,
        range: RangeInclusive<u64>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        Ok(self.amount(variable, &range, "days")?.map_or(default, |days| Duration::from_secs(days * 86_400)))
    }

    /// A rate from two variables: requests per minute (0 turns the limit off: `None`) and the
    /// burst (1 or more).
    pub fn rate(
        &self,
        per_minute: &'static str,
        burst: &'static str,
        default: Option<Rate>,
    ) -> Result<Option<Rate>, ConfigError> {
        let default = default.unwrap_or(Rate { per_minute: 0, burst: 0 });
        let per_minute = self.number_in(per_minute, 0..=1_000_000, default.per_minute)?;
        let burst = self.number_in(burst, 1..=1_000_000, default.burst)?;
        Ok((per_minute > 0).then_some(Rate { per_minute, burst }))
    }

    /// IP addresses and CIDR blocks separated by commas; none when unset.
    pub fn networks(&self, variable: &'static str) -> Result<Vec<IpNet>, ConfigError> {
        let Some(value) = self.optional(variable) else { return Ok(Vec::new()) };
        value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                IpNet::parse(item).ok_or_else(|| {
                    ConfigError::new(
                        variable,
                        value.clone(),
                        "expected IP addresses or CIDR blocks separated by commas, e.g. 10.0.0.1,192.168.0.0/16",
                    )
                })
            })
            .collect()
    }

    /// Items separated by commas, each trimmed; none when unset.
    pub fn list(&self, variable: &str) -> Vec<String> {
        self.optional(variable).map_or_else(Vec::new, |value| {
            value.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
        })
    }

    /// An `http://` or `https://` URL (an outbound integration's address: `https://` on the
    /// internet, `http://` for a gateway on the local network).
    pub fn http_url(&self, variable: &'static str) -> Result<Option<String>, ConfigError> {
        match self.optional(variable) {
            None => Ok(None),
            Some(value)
                if (value.starts_with("http://") || value.starts_with("https://"))
                    && url::Url::parse(&value).is_ok_and(|url| url.host().is_some()) =>
            {
                Ok(Some(value))
            }
            Some(value) => Err(ConfigError::new(variable, value, "expected an http:// or https:// URL")),
        }
    }

    /// The contents of the file the variable names; none when unset. A file that cannot be read
    /// stops start-up with the variable's name.
    pub fn file(&self, variable: &'static str) -> Result<Option<(String, Vec<u8>)>, ConfigError> {
        let Some(path) = self.optional(variable) else { return Ok(None) };
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some((path, bytes))),
            Err(error) => Err(ConfigError::new(variable, path, format!("cannot be read: {error}"))),
        }
    }

    /// A secret of at least `min_bytes`; the error never shows it.
    pub fn secret(&self, variable: &'static str, min_bytes: usize) -> Result<Option<String>, ConfigError> {
        match self.optional(variable) {
            Some(secret) if secret.len() < min_bytes => {
                Err(ConfigError::new(variable, "<hidden>", format!("must be at least {min_bytes} bytes long")))
            }
            other => Ok(other),
        }
    }

    /// A number in `unit`s within `range`; the error says the unit and the range.
    fn amount<T: Number>(
        &self,
        variable: &'static str,
        range: &RangeInclusive<T>,
        unit: &str,
    ) -> Result<Option<T>, ConfigError> {
        match self.optional(variable) {
            None => Ok(None),
            Some(value) => match value.parse::<T>() {
                Ok(number) if range.contains(&number) => Ok(Some(number)),
                _ => {
                    let reason = format!("expected {unit} from {} to {}", range.start(), range.end());
                    Err(ConfigError::new(variable, value, reason))
                }
            },
        }
    }
}

/// The whole-number types settings come in.
pub trait Number: FromStr + PartialOrd + Display + Copy {}

impl<T: FromStr + PartialOrd + Display + Copy> Number for T {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(pairs: &[(&str, &str)], read: impl FnOnce(&Reader)) {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = move |name: &str| map.get(name).cloned();
        read(&Reader::new(&lookup));
    }

    #[test]
    fn a_number_out_of_range_names_the_variable_and_the_range() {
        with(&[("POOL", "1001")], |env| {
            let error = env.number_in("POOL", 1..=1000u32, 10).unwrap_err();
            assert_eq!(error.variable, "POOL");
            assert_eq!(error.value, "1001");
            assert_eq!(error.reason, "expected a whole number from 1 to 1000");
            assert!(error.to_string().contains("POOL=\"1001\""), "{error}");
        });
    }

    #[test]
    fn a_number_that_is_no_number_is_refused_and_an_unset_one_takes_the_default() {
        with(&[("POOL", "-3"), ("EMPTY", "  ")], |env| {
            assert_eq!(env.number_in("POOL", 0..=10u64, 1).unwrap_err().variable, "POOL");
            assert_eq!(env.number_in("EMPTY", 0..=10u64, 7).unwrap(), 7, "blank is unset");
            assert_eq!(env.number_in("UNSET", 0..=10u64, 7).unwrap(), 7);
            assert_eq!(env.optional_number_in("UNSET", 0..=10u64).unwrap(), None);
        });
    }

    #[test]
    fn durations_are_read_in_their_unit_and_range() {
        with(&[("WAIT_MS", " 250 "), ("LEASE", "90"), ("KEEP", "2"), ("TOO_SOON_MS", "0")], |env| {
            assert_eq!(env.millis("WAIT_MS", 1..=1000, Duration::ZERO).unwrap(), Duration::from_millis(250));
            assert_eq!(env.secs("LEASE", 1..=100, Duration::ZERO).unwrap(), Duration::from_secs(90));
            assert_eq!(env.days("KEEP", 1..=10, Duration::ZERO).unwrap(), Duration::from_secs(2 * 86_400));
            assert_eq!(env.optional_millis("UNSET_MS", 1..=10).unwrap(), None);
            let error = env.millis("TOO_SOON_MS", 1..=600_000, Duration::ZERO).unwrap_err();
            assert_eq!(
                (error.variable, error.reason.as_ref()),
                ("TOO_SOON_MS", "expected milliseconds from 1 to 600000")
            );
            let error = env.secs("LEASE", 1..=60, Duration::ZERO).unwrap_err();
            assert_eq!(error.reason, "expected seconds from 1 to 60");
        });
    }

    #[test]
    fn flags_take_true_1_yes_and_false_0_no_and_nothing_else() {
        let spellings = [("true", true), ("1", true), ("yes", true), ("false", false), ("0", false), ("no", false)];
        for (spelling, meaning) in spellings {
            with(&[("FLAG", spelling)], |env| assert_eq!(env.bool("FLAG", !meaning).unwrap(), meaning, "{spelling}"));
        }
        with(&[("FLAG", "maybe")], |env| {
            let error = env.bool("FLAG", true).unwrap_err();
            assert_eq!((error.variable, error.reason.as_ref()), ("FLAG", "expected true or false"));
            assert!(env.bool("UNSET", true).unwrap());
        });
    }

    #[test]
    fn a_missing_required_value_names_the_variable_and_what_needs_it() {
        with(&[], |env| {
            let error = env.required("APP_SECRET", "the app needs its secret").unwrap_err();
            assert_eq!((error.variable, error.reason.as_ref()), ("APP_SECRET", "the app needs its secret"));
        });
    }

    #[test]
    fn a_short_secret_is_refused_without_showing_it() {
        with(&[("SECRET", "hunter2"), ("LONG", "0123456789abcdef")], |env| {
            let error = env.secret("SECRET", 16).unwrap_err();
            assert_eq!(error.variable, "SECRET");
            assert!(!error.to_string().contains("hunter2"), "{error}");
            assert_eq!(error.reason, "must be at least 16 bytes long");
            assert_eq!(env.secret("LONG", 16).unwrap().as_deref(), Some("0123456789abcdef"));
            assert_eq!(env.secret("UNSET", 16).unwrap(), None);
        });
    }

    #[test]
    fn urls_are_http_or_https_with_a_host() {
        let given = [("PLAIN", "http://127.0.0.1:9/hook"), ("TLS", "https://x.example/"), ("BAD", "http://")];
        with(&[given[0], given[1], given[2], ("FTP", "ftp://x.example/")], |env| {
            assert_eq!(env.http_url("PLAIN").unwrap().as_deref(), Some("http://127.0.0.1:9/hook"));
            assert_eq!(env.http_url("TLS").unwrap().as_deref(), Some("https://x.example/"));
            assert_eq!(env.http_url("BAD").unwrap_err().reason, "expected an http:// or https:// URL");
            assert_eq!(env.http_url("FTP").unwrap_err().variable, "FTP");
        });
    }

    #[test]
    fn a_rate_of_zero_per_minute_is_no_limit_and_a_burst_of_zero_is_refused() {
        with(&[("OFF", "0"), ("ON", "60"), ("BURST", "5"), ("NO_BURST", "0")], |env| {
            let default = Some(Rate { per_minute: 10, burst: 2 });
            assert_eq!(env.rate("OFF", "BURST", default).unwrap(), None);
            assert_eq!(env.rate("ON", "BURST", default).unwrap(), Some(Rate { per_minute: 60, burst: 5 }));
            assert_eq!(env.rate("UNSET", "UNSET_BURST", default).unwrap(), default);
            assert_eq!(env.rate("ON", "NO_BURST", default).unwrap_err().variable, "NO_BURST");
        });
    }

    #[test]
    fn networks_and_lists_are_split_at_commas() {
        with(&[("NETS", " 10.0.0.0/8, ,::1 "), ("BAD_NETS", "10.0.0.1,nope"), ("LIST", "a, b,,c ")], |env| {
            assert_eq!(env.networks("NETS").unwrap().len(), 2);
            assert!(env.networks("UNSET").unwrap().is_empty());
            let error = env.networks("BAD_NETS").unwrap_err();
            assert_eq!((error.variable, error.value.as_str()), ("BAD_NETS", "10.0.0.1,nope"));
            assert_eq!(env.list("LIST"), ["a", "b", "c"]);
        });
    }
}
