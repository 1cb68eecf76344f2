//! Error mapping: a core [`ticketing_core::Error`] (or an input problem found here) becomes a
//! status code and the body `{"result":"<status>","message":"...","code":"..."}`.
//!
//! The cause travels to the request log in a response extension ([`ErrorCause`]); a 500's
//! message to the client is always the same fixed sentence.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ticketing_core::{Error, ErrorClass};

use super::dto::ErrorBody;

/// An error answer of the API.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// What the log shows (for a 500, the internal detail the client never sees).
    cause: String,
    /// Seconds for a `Retry-After` header (429, 503).
    retry_after: Option<u64>,
}

/// The cause of an error response, for the request log line.
#[derive(Debug, Clone)]
pub(crate) struct ErrorCause {
    pub code: &'static str,
    pub cause: String,
}

impl ApiError {
    /// A 400 for a malformed, missing, mistyped or out-of-range field.
    pub fn bad_input(message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "INVALID_ARGUMENT",
            cause: message.clone(),
            message,
            retry_after: None,
        }
    }

    /// A 400 for a body that is not JSON at all.
    pub fn malformed_json(detail: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "MALFORMED_JSON",
            message: format!("the request body is not valid JSON: {detail}"),
            cause: format!("malformed JSON: {detail}"),
            retry_after: None,
        }
    }

    /// Any status with a code and a message the client may read.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError {
            status,
            code,
            cause: message.clone(),
            message,
            retry_after: None,
        }
    }

    /// A 429 RATE_LIMITED with `Retry-After: seconds`.
    pub fn rate_limited(seconds: u64, message: String) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "RATE_LIMITED",
            cause: message.clone(),
            message,
            retry_after: Some(seconds),
        }
    }

    /// A 500; `detail` goes to the log only.
    pub fn internal(detail: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "INTERNAL",
            message: "Internal server error".into(),
            cause: detail.into(),
            retry_after: None,
        }
    }

    /// The status code.
    #[cfg(test)]
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let status = match e.class() {
            ErrorClass::BadRequest => StatusCode::BAD_REQUEST,
            ErrorClass::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorClass::Forbidden => StatusCode::FORBIDDEN,
            ErrorClass::NotFound => StatusCode::NOT_FOUND,
            ErrorClass::Conflict => StatusCode::CONFLICT,
            ErrorClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorClass::Internal => return ApiError::internal(e.to_string()),
        };
        let cause = e.to_string();
        // The database's own words (hosts, server messages) are for the log, not for clients.
        let message = match e {
            Error::DbUnavailable(_) => "the database is unavailable; try again shortly".to_string(),
            _ => cause.clone(),
        };
        ApiError {
            status,
            code: e.code(),
            cause,
            message,
            // The lock service or the database is down: worth another try in a second.
            retry_after: (status == StatusCode::SERVICE_UNAVAILABLE).then_some(1),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            result: self.status.as_str(),
            message: &self.message,
            code: self.code,
        };
        let bytes = serde_json::to_vec(&body)
            .unwrap_or_else(|_| br#"{"result":"500","message":"Internal server error","code":"INTERNAL"}"#.to_vec());
        let mut response = (self.status, bytes).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(ErrorCause {
            code: self.code,
            cause: self.cause,
        });
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_detail() {
        let e = ApiError::from(Error::Internal("disk I/O error at /secret/path".into()));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.message, "Internal server error");
        assert!(e.cause.contains("/secret/path"));
    }

    #[test]
    fn classes_map_to_statuses() {
        let cases = [
            (Error::invalid("userId", "x"), 400),
            (Error::Unauthorized(ticketing_core::TokenProblem::Missing), 401),
            (Error::UserMismatch, 403),
            (Error::not_found("seat", 1), 404),
            (Error::SeatUnavailable { seat_id: 1 }, 409),
            (Error::LockUnavailable, 503),
        ];
        for (e, status) in cases {
            assert_eq!(ApiError::from(e).status().as_u16(), status);
        }
    }
}
