//! The sign-in lockout: failed sign-ins refused per (username, address), slowed per username.
//!
//! A hard refusal counted per username alone would let anyone who knows a username keep its
//! provider locked out forever, from anywhere. So the refusal counts failures of one username from
//! one address (`LOGIN_MAX_FAILURES_PER_USERNAME`), beside the per-address count over all
//! usernames (`LOGIN_MAX_FAILURES_PER_IP`); an attacker locks out only their own address. What
//! still counts per username, from everywhere, is a slow-down: from `LOGIN_SLOW_AFTER_FAILURES`
//! failures each attempt is answered one `LOGIN_FAILURE_DELAY_MS` step later (at most 5 s), so a
//! guessing campaign spread over many addresses still gets slow. The provider itself is not slowed
//! where it usually signs in from: the right password from an address it signed in from within
//! `LOGIN_KNOWN_ADDRESS_DAYS` is answered at once.
//!
//! The delay is decided after the password is checked (only then is "the right password" known)
//! and applies to wrong passwords and to right ones from unknown addresses alike, so its timing
//! tells a guesser nothing. A success forgives the failures of that username from that address;
//! the per-username count runs out its window (a success does not prove who failed).

use super::{count_refusal, ip_key, Guard, Refusal};
use std::net::IpAddr;
use std::time::Duration;

/// The upper bound of the growing sign-in delay.
const MAX_LOGIN_DELAY: Duration = Duration::from_secs(5);

impl Guard {
    /// Before a sign-in is checked: refused while the username has failed too often from this
    /// address, or the address too often with any username.
    pub async fn before_login(&self, username: &str, ip: Option<IpAddr>) -> Result<(), Refusal> {
        let settings = self.settings();
        let from_here = self.ask(self.limiter.peek(&user_at_address_key(username, ip))).await.flatten();
        let from_ip = match ip {
            Some(ip) => self.ask(self.limiter.peek(&ip_failures_key(ip))).await.flatten(),
            None => None,
        };
        let over = |found: Option<(u64, Duration)>, max: u32| {
            found.filter(|(count, _)| max > 0 && *count >= u64::from(max)).map(|(_, left)| left)
        };
        let refused_for = over(from_here, settings.login_max_failures_per_username)
            .into_iter()
            .chain(over(from_ip, settings.login_max_failures_per_ip))
            .max();
        let Some(left) = refused_for else { return Ok(()) };
        tracing::warn!(username, ip = ?ip, "sign-in refused: too many failures");
        count_refusal("login");
        let retry_after = left.max(Duration::from_secs(1));
        Err(match ip {
            Some(ip) => self.refused(ip, retry_after).await,
            None => Refusal::Limited { retry_after },
        })
    }

    /// Once the password is checked, how long to wait before answering: growing with the
    /// username's failures from anywhere, except for the right password from an address the
    /// provider signed in from lately.
    pub async fn login_delay(&self, username: &str, ip: Option<IpAddr>, right_password: bool) -> Duration {
        let settings = self.settings();
        if settings.login_slow_after == 0 {
            return Duration::ZERO;
        }
        let failures = self.ask(self.limiter.peek(&user_failures_key(username))).await.flatten();
        let failures = failures.map_or(0, |(count, _)| count);
        if failures < u64::from(settings.login_slow_after) {
            return Duration::ZERO;
        }
        if right_password && self.known_address(username, ip).await {
            return Duration::ZERO;
        }
        let steps = (failures + 1 - u64::from(settings.login_slow_after)).min(100) as u32;
        (settings.login_failure_delay * steps).min(MAX_LOGIN_DELAY)
    }

    /// A sign-in failed (wrong password or unknown username).
    pub async fn login_failed(&self, username: &str, ip: Option<IpAddr>) {
        let window = self.settings().login_failure_window;
        self.ask(self.limiter.hit(&user_failures_key(username), window)).await;
        self.ask(self.limiter.hit(&user_at_address_key(username, ip), window)).await;
        if let Some(ip) = ip {
            self.ask(self.limiter.hit(&ip_failures_key(ip), window)).await;
        }
    }

    /// A sign-in succeeded: the username's failures from this address are forgiven (the
    /// address's and the username's overall are not), and the address is known to it for a while.
    pub async fn login_succeeded(&self, username: &str, ip: Option<IpAddr>) {
        self.ask(self.limiter.clear(&user_at_address_key(username, ip))).await;
        let known_for = self.settings().login_known_address_for;
        if let (Some(ip), false) = (ip, known_for.is_zero()) {
            self.ask(self.limiter.set_for(&known_address_key(username, ip), known_for)).await;
        }
    }

    async fn known_address(&self, username: &str, ip: Option<IpAddr>) -> bool {
        let Some(ip) = ip else { return false };
        if self.settings().login_known_address_for.is_zero() {
            return false;
        }
        self.ask(self.limiter.peek(&known_address_key(username, ip))).await.flatten().is_some()
    }
}

fn user_failures_key(username: &str) -> String {
    format!("login-user:{}", username.trim())
}

fn user_at_address_key(username: &str, ip: Option<IpAddr>) -> String {
    let address = ip.map_or_else(|| "-".to_owned(), ip_key);
    format!("login-user-ip:{address}:{}", username.trim())
}

fn ip_failures_key(ip: IpAddr) -> String {
    format!("login-ip:{}", ip_key(ip))
}

fn known_address_key(username: &str, ip: IpAddr) -> String {
    format!("login-known:{}:{}", ip_key(ip), username.trim())
}

#[cfg(test)]
mod tests {
    use super::super::tests::guard;
    use super::*;
    use crate::config::SecuritySettings;

    #[tokio::test]
    async fn failures_from_one_address_slow_the_username_down_and_refuse_only_that_address() {
        let settings = SecuritySettings {
            login_slow_after: 2,
            login_failure_delay: Duration::from_millis(100),
            login_max_failures_per_username: 4,
            ..SecuritySettings::default()
        };
        let guard = guard(settings);
        let (attacker, home) = (Some("198.51.100.1".parse().unwrap()), Some("203.0.113.7".parse().unwrap()));
        guard.login_succeeded("demo-a", home).await;
        let mut delays = Vec::new();
        for _ in 0..4 {
            assert_eq!(guard.before_login("demo-a", attacker).await, Ok(()));
            delays.push(guard.login_delay("demo-a", attacker, false).await.as_millis());
            guard.login_failed("demo-a", attacker).await;
        }
        assert_eq!(delays, [0, 0, 100, 200]);
        assert!(matches!(guard.before_login("demo-a", attacker).await, Err(Refusal::Limited { .. })));
        assert_eq!(guard.before_login("demo-b", attacker).await, Ok(()), "another username is not refused");
        assert_eq!(guard.before_login("demo-a", home).await, Ok(()), "nor is the username from elsewhere");
        assert_eq!(guard.login_delay("demo-a", home, true).await, Duration::ZERO, "its known address is not slowed");
        assert_eq!(guard.login_delay("demo-a", home, false).await.as_millis(), 300, "a wrong password there is");
        let elsewhere = Some("192.0.2.1".parse().unwrap());
        assert_eq!(guard.login_delay("demo-a", elsewhere, true).await.as_millis(), 300, "an unknown address is");
    }
}
