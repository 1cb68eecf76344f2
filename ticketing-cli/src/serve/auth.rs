//! Where a request's queue token comes from, in order: `Authorization: Bearer <token>`, a bare
//! `Authorization: <token>`, the seed's `token` query parameter, the `token` body field.
//!
//! This only finds the text; the core decides whether it is missing (401 TOKEN_MISSING),
//! unknown (401), expired (401) or still waiting (403).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;

/// The token given in the header or the query string, if any (the body is read later, by the
/// handlers that have one).
#[derive(Debug, Default)]
pub struct RequestToken(pub Option<String>);

impl RequestToken {
    /// This token, else the one from the body, else empty (which the core answers with 401
    /// TOKEN_MISSING).
    pub fn or_body(self, body: Option<&str>) -> String {
        match self.0 {
            Some(t) => t,
            None => body.map(str::to_owned).unwrap_or_default(),
        }
    }

    /// This token, or empty.
    pub fn into_string(self) -> String {
        self.0.unwrap_or_default()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<RequestToken, ApiError> {
        if let Some(value) = parts.headers.get(AUTHORIZATION) {
            let text = value
                .to_str()
                .map_err(|_| ApiError::bad_input("the Authorization header is not valid text"))?
                .trim();
            let token = match text.split_once(' ') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
                _ => text,
            };
            if !token.is_empty() {
                return Ok(RequestToken(Some(token.to_owned())));
            }
        }
        Ok(RequestToken(parts.uri.query().and_then(|q| query_param(q, "token"))))
    }
}

/// The first value of `name` in a query string, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    form_pairs(query).find(|(k, _)| k == name).map(|(_, v)| v)
}

/// The pairs of an `application/x-www-form-urlencoded` query string.
pub fn form_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries() {
        assert_eq!(query_param("a=1&token=abc%2Dd&x", "token").as_deref(), Some("abc-d"));
        assert_eq!(query_param("userId=12", "userId").as_deref(), Some("12"));
        assert_eq!(query_param("userId=", "userId").as_deref(), Some(""));
        assert_eq!(query_param("u=%", "u").as_deref(), Some("%"));
        assert_eq!(query_param("u=%4", "u").as_deref(), Some("%4"));
        assert_eq!(query_param("u=%41", "u").as_deref(), Some("A"));
        assert_eq!(query_param("u=a+b", "u").as_deref(), Some("a b"));
        assert_eq!(query_param("", "u"), None);
    }
}
