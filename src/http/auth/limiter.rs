//! Failed logins per client within a sliding window, so a password cannot be guessed
//! quickly.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use tokio::time::Instant;

/// Clients whose failures are remembered at most, for the same reason.
pub(super) const MAX_TRACKED_CLIENTS: usize = 10_000;

/// Whether a client may try a password now.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Admission {
    /// It may.
    Allowed,
    /// It failed too often; it may try again after this long.
    Limited(Duration),
}

/// Failed logins per client within a sliding window.
pub(super) struct LoginLimiter {
    /// Client key → times of its recent failures, oldest first.
    failures: HashMap<IpAddr, VecDeque<Instant>>,
    /// Failures allowed within `window`.
    max: usize,
    /// How long a failure counts.
    window: Duration,
}

impl LoginLimiter {
    pub(super) fn new(max: usize, window: Duration) -> Self {
        Self {
            failures: HashMap::new(),
            max,
            window,
        }
    }

    /// Whether `client` may try a password at `now`.
    pub(super) fn admit(&mut self, client: IpAddr, now: Instant) -> Admission {
        let key = client_key(client);
        let window = self.window;
        let Some(times) = self.failures.get_mut(&key) else {
            return Admission::Allowed;
        };
        while times.front().is_some_and(|t| *t + window <= now) {
            times.pop_front();
        }
        if times.is_empty() {
            self.failures.remove(&key);
            return Admission::Allowed;
        }
        if times.len() < self.max {
            return Admission::Allowed;
        }
        // The oldest failure that still counts must leave the window.
        let index = times.len() - self.max;
        let free_at = times[index] + window;
        Admission::Limited(free_at.saturating_duration_since(now))
    }

    /// Counts a failed login of `client` at `now`.
    pub(super) fn record_failure(&mut self, client: IpAddr, now: Instant) {
        let key = client_key(client);
        if !self.failures.contains_key(&key) && self.failures.len() >= MAX_TRACKED_CLIENTS {
            let window = self.window;
            self.failures
                .retain(|_, times| times.back().is_some_and(|t| *t + window > now));
            if self.failures.len() >= MAX_TRACKED_CLIENTS
                && let Some(stalest) = self
                    .failures
                    .iter()
                    .min_by_key(|(_, times)| times.back().copied())
                    .map(|(key, _)| *key)
            {
                self.failures.remove(&stalest);
            }
        }
        let times = self.failures.entry(key).or_default();
        times.push_back(now);
        // Only the newest `max` failures decide anything.
        while times.len() > self.max {
            times.pop_front();
        }
    }

    /// Forgets the failures of `client` (it has just logged in).
    pub(super) fn forget(&mut self, client: IpAddr) {
        self.failures.remove(&client_key(client));
    }
}

/// The key a client's failures are counted under: its `IPv4` address, or the /64 network
/// of its `IPv6` address (one host usually owns a whole /64, so counting single addresses would
/// give it billions of budgets).
pub(super) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                IpAddr::V4(v4)
            } else {
                let network = v6.to_bits() & !u128::from(u64::MAX);
                IpAddr::V6(Ipv6Addr::from_bits(network))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::clock::Clock;

    #[tokio::test(start_paused = true)]
    async fn the_limiter_blocks_after_five_failures_per_minute() {
        let clock = Clock::System;
        let mut limiter = LoginLimiter::new(5, Duration::from_mins(1));
        let client = IpAddr::from([192, 0, 2, 1]);
        let other = IpAddr::from([192, 0, 2, 2]);
        for _ in 0..5 {
            assert_eq!(limiter.admit(client, clock.instant()), Admission::Allowed);
            limiter.record_failure(client, clock.instant());
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        // Failures at 0..=4 s; now 5 s: the first one leaves the window at 60 s.
        assert_eq!(
            limiter.admit(client, clock.instant()),
            Admission::Limited(Duration::from_secs(55))
        );
        assert_eq!(limiter.admit(other, clock.instant()), Admission::Allowed);

        tokio::time::advance(Duration::from_secs(55)).await;
        assert_eq!(limiter.admit(client, clock.instant()), Admission::Allowed);
        limiter.record_failure(client, clock.instant());
        assert!(matches!(
            limiter.admit(client, clock.instant()),
            Admission::Limited(_)
        ));

        limiter.forget(client);
        assert_eq!(limiter.admit(client, clock.instant()), Admission::Allowed);

        tokio::time::advance(Duration::from_mins(10)).await;
        assert_eq!(limiter.admit(other, clock.instant()), Admission::Allowed);
        assert!(limiter.failures.is_empty());
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_network() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    }

    #[test]
    fn the_limiter_remembers_a_bounded_number_of_clients() {
        let now = Clock::System.instant();
        let mut limiter = LoginLimiter::new(5, Duration::from_mins(1));
        for n in 0..u32::try_from(MAX_TRACKED_CLIENTS).unwrap() + 3 {
            limiter.record_failure(IpAddr::from(n.to_be_bytes()), now);
        }
        assert_eq!(limiter.failures.len(), MAX_TRACKED_CLIENTS);
    }
}
