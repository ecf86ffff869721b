//! The gateway's one error type, and how it reaches a client.
//!
//! Every error records who is at fault (the client, the upstream, the gateway itself, or the
//! policy) and whether retrying may help, and is answered in the shape the client's SDK
//! understands: OpenAI's `{"error": {"message", "type", "code"}}` or Anthropic's
//! `{"type": "error", "error": {"type", "message"}}`. Messages name what was wrong and
//! where, never an API key or prompt text. Errors are logged once, where they become a
//! response.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        message: String,
    },
    /// Not valid TOML, or a key the format does not have.
    #[error("{origin}: {message}")]
    Toml {
        /// The file.
        origin: String,
        /// Line, column and reason.
        message: String,
    },
    /// A value the gateway cannot use.
    #[error("{origin}: {key}: {reason}")]
    Invalid {
        /// The file.
        origin: String,
        /// Key path (`upstream.url`).
        key: String,
        /// Why.
        reason: String,
    },
}

/// Who caused a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request was wrong.
    Client,
    /// The model server failed or could not be reached.
    Upstream,
    /// The gateway itself (engine or store unavailable under fail-closed, a bug).
    Internal,
    /// The policy refused the request.
    Policy,
}

/// The API shape an error body takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shape {
    /// OpenAI's error object.
    #[default]
    OpenAi,
    /// Anthropic's error object.
    Anthropic,
}

/// A failure answered to a client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct GatewayError {
    /// HTTP status.
    pub status: StatusCode,
    /// Who is at fault.
    pub fault: Fault,
    /// Whether the same request may succeed later.
    pub retryable: bool,
    /// Stable machine-readable code (`invalid_json`, `rate_limited`…).
    pub code: &'static str,
    /// What happened and where, safe to show.
    pub message: String,
    /// Seconds to wait before retrying, when known.
    pub retry_after: Option<u64>,
    /// The body shape.
    pub shape: Shape,
}

impl GatewayError {
    /// A client error (4xx).
    pub fn client(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        GatewayError {
            status,
            fault: Fault::Client,
            retryable: false,
            code,
            message: message.into(),
            retry_after: None,
            shape: Shape::OpenAi,
        }
    }

    /// An upstream failure (502/504).
    pub fn upstream(status: StatusCode, message: impl Into<String>) -> Self {
        GatewayError {
            status,
            fault: Fault::Upstream,
            retryable: true,
            code: "upstream_error",
            message: message.into(),
            retry_after: None,
            shape: Shape::OpenAi,
        }
    }

    /// A gateway failure.
    pub fn internal(code: &'static str, message: impl Into<String>) -> Self {
        GatewayError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            fault: Fault::Internal,
            retryable: true,
            code,
            message: message.into(),
            retry_after: Some(1),
            shape: Shape::OpenAi,
        }
    }

    /// A refusal by policy.
    pub fn policy(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        GatewayError {
            status,
            fault: Fault::Policy,
            retryable: status == StatusCode::TOO_MANY_REQUESTS,
            code,
            message: message.into(),
            retry_after: None,
            shape: Shape::OpenAi,
        }
    }

    /// The same error in another body shape.
    pub fn shaped(mut self, shape: Shape) -> Self {
        self.shape = shape;
        self
    }

    /// With a `retry-after`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self.retryable = true;
        self
    }

    /// The OpenAI `type` (and Anthropic error type) for this error.
    fn kind(&self) -> &'static str {
        match (self.shape, self.status.as_u16()) {
            (Shape::OpenAi, 401) => "authentication_error",
            (Shape::OpenAi, 403) => "permission_error",
            (Shape::OpenAi, 404) => "not_found_error",
            (Shape::OpenAi, 429) => "rate_limit_error",
            (Shape::OpenAi, 400..=499) => "invalid_request_error",
            (Shape::OpenAi, _) if self.fault == Fault::Upstream => "upstream_error",
            (Shape::OpenAi, _) => "server_error",
            (Shape::Anthropic, 401) => "authentication_error",
            (Shape::Anthropic, 403) => "permission_error",
            (Shape::Anthropic, 404) => "not_found_error",
            (Shape::Anthropic, 413) => "request_too_large",
            (Shape::Anthropic, 429) => "rate_limit_error",
            (Shape::Anthropic, 400..=499) => "invalid_request_error",
            (Shape::Anthropic, 529 | 503) => "overloaded_error",
            (Shape::Anthropic, _) => "api_error",
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        match self.shape {
            Shape::OpenAi => serde_json::json!({
                "error": {
                    "message": self.message,
                    "type": self.kind(),
                    "param": null,
                    "code": self.code,
                }
            }),
            Shape::Anthropic => serde_json::json!({
                "type": "error",
                "error": { "type": self.kind(), "message": self.message },
            }),
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut resp = (self.status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(s) = self.retry_after {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_shape_carries_type_and_code() {
        let e = GatewayError::client(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "body: expected value at 1:1",
        );
        let b = e.body();
        assert_eq!(b["error"]["type"], "invalid_request_error");
        assert_eq!(b["error"]["code"], "invalid_json");
        assert_eq!(b["error"]["message"], "body: expected value at 1:1");
    }

    #[test]
    fn anthropic_shape_is_typed_error() {
        let e = GatewayError::policy(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "slow down")
            .shaped(Shape::Anthropic)
            .retry_after(3);
        let b = e.body();
        assert_eq!(b["type"], "error");
        assert_eq!(b["error"]["type"], "rate_limit_error");
        let resp = e.into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()["retry-after"], "3");
    }
}
