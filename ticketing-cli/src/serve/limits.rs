//! Abuse limits on the two endpoints a bot would hammer in a rush: token issue and reserve.
//! Per client IP (default 2,000 a second) and per user (default 60 a minute; a user is the
//! `userId` of a token request, and the token of a reserve — one live token per user). Over the
//! limit: 429 with `Retry-After`. Generous enough never to touch a person or a test suite on
//! one address; `--rate-limit off` removes them (benchmarks, load tests).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::error::ApiError;

/// The limits of one server.
pub(crate) struct RateLimits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_user: DefaultKeyedRateLimiter<String>,
}

impl RateLimits {
    /// `per_ip` requests a second per address, `per_user` a minute per user (each also the burst).
    pub fn new(per_ip: NonZeroU32, per_user: NonZeroU32) -> RateLimits {
        RateLimits {
            per_ip: DefaultKeyedRateLimiter::keyed(Quota::per_second(per_ip)),
            per_user: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_user)),
        }
    }

    /// Counts one request of `user` (e.g. `token:<uuid>`, `user:7`) from `ip`; 429 when over.
    pub fn check(&self, ip: Option<IpAddr>, user: &str) -> Result<(), ApiError> {
        if let Some(ip) = ip {
            if let Err(not_until) = self.per_ip.check_key(&ip) {
                return Err(limited(
                    "this address",
                    not_until.wait_time_from(DefaultClock::default().now()),
                ));
            }
        }
        if let Err(not_until) = self.per_user.check_key(&user.to_string()) {
            return Err(limited(
                "this user",
                not_until.wait_time_from(DefaultClock::default().now()),
            ));
        }
        Ok(())
    }

    /// Forgets keys idle long enough to be back at a full burst (called by the sweeper).
    pub fn forget_idle(&self) {
        self.per_ip.retain_recent();
        self.per_user.retain_recent();
    }
}

fn limited(who: &str, wait: Duration) -> ApiError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::rate_limited(
        seconds.max(1),
        format!("too many requests from {who}; retry after {} s", seconds.max(1)),
    )
}

/// The client's address, when the server knows it (it does when served with connect info).
pub(crate) struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_over_the_limit_gets_429_with_retry_after() {
        let limits = RateLimits::new(NonZeroU32::new(1000).unwrap(), NonZeroU32::new(3).unwrap());
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        for _ in 0..3 {
            limits.check(ip, "user:1").unwrap();
        }
        let err = limits.check(ip, "user:1").unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        // Another user is not affected.
        limits.check(ip, "user:2").unwrap();
    }

    #[test]
    fn an_address_over_the_limit_gets_429() {
        let limits = RateLimits::new(NonZeroU32::new(2).unwrap(), NonZeroU32::new(1000).unwrap());
        let ip = Some(IpAddr::from([10, 0, 0, 9]));
        limits.check(ip, "user:1").unwrap();
        limits.check(ip, "user:2").unwrap();
        assert_eq!(
            limits.check(ip, "user:3").unwrap_err().status(),
            axum::http::StatusCode::TOO_MANY_REQUESTS
        );
        limits.check(Some(IpAddr::from([10, 0, 0, 10])), "user:3").unwrap();
    }
}
