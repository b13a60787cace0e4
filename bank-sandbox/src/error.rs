//! The bank's refusals: a stable machine-readable code, an HTTP status and a message for
//! people. Internal failures are logged with their cause and answered without it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::hsm::HsmError;
use crate::store::StoreError;
use crate::util::EntropyError;

/// A refusal or failure, as the API answers it: `{"error": code, "message": ..., ...extra}`.
#[derive(Debug, Clone)]
pub struct BankError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable error code (README.md lists them).
    pub code: &'static str,
    /// Human-readable explanation; never a secret.
    pub message: String,
    /// More fields for the JSON body (e.g. a signed command to relay).
    pub extra: Map<String, Value>,
}

impl std::fmt::Display for BankError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for BankError {}

/// Result of a bank operation.
pub type BankResult<T> = Result<T, BankError>;

impl BankError {
    /// A refusal with `status` and `code`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: Map::new(),
        }
    }

    /// Adds a field to the JSON body.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// 400: the request is malformed.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 401: missing or unknown credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: the caller's role may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409: not allowed in the current state.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422: a protected payload did not verify (bad MAC, signature, KCV, counter...).
    pub fn rejected(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 500, for failures of the bank itself.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the bank failed; nothing was changed",
        )
    }
}

impl From<StoreError> for BankError {
    fn from(e: StoreError) -> Self {
        Self::internal(&e)
    }
}

impl From<sqlx::Error> for BankError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(&e)
    }
}

impl From<HsmError> for BankError {
    fn from(e: HsmError) -> Self {
        Self::internal(&e)
    }
}

impl From<EntropyError> for BankError {
    fn from(e: EntropyError) -> Self {
        Self::internal(&e)
    }
}

impl IntoResponse for BankError {
    fn into_response(self) -> Response {
        let mut body = self.extra;
        body.insert("error".into(), json!(self.code));
        body.insert("message".into(), json!(self.message));
        (self.status, axum::Json(Value::Object(body))).into_response()
    }
}
