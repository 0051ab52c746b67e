//! One error type for the whole service, rendered as RFC 9457 `application/problem+json`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// A problem with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON path of the field (`email`, `rows[3].amount`), or the header / query parameter name.
    pub field: String,
    /// Stable machine code (`required`, `length`, `invalid_enum`, …).
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body parsed but its content is invalid (422).
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    /// The request is malformed: bad JSON, bad path or query parameter (400).
    #[error("{detail}")]
    BadRequest {
        detail: String,
        field: Option<String>,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Rows of a batch that conflict with what is already stored (409), each named.
    #[error("some rows conflict with stored records")]
    ConflictingRows(Vec<FieldError>),
    #[error("the request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    ServiceUnavailable(String),
    /// Anything unexpected. The cause is logged, never shown to the client.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The RFC 9457 body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl AppError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        AppError::BadRequest {
            detail: detail.into(),
            field: None,
        }
    }

    pub fn bad_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        AppError::BadRequest {
            detail: detail.into(),
            field: Some(field.into()),
        }
    }

    pub fn invalid_field(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        AppError::Validation(vec![FieldError::new(field, code, message)])
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(error.into())
    }

    /// Short, stable code: the last segment of the problem type URI.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Validation(_) => "validation-error",
            AppError::BadRequest { .. } => "bad-request",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not-found",
            AppError::Conflict(_) | AppError::ConflictingRows(_) => "conflict",
            AppError::PayloadTooLarge { .. } => "payload-too-large",
            AppError::UnsupportedMediaType(_) => "unsupported-media-type",
            AppError::MethodNotAllowed(_) => "method-not-allowed",
            AppError::ServiceUnavailable(_) => "service-unavailable",
            AppError::Internal(_) => "internal-error",
        }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        let errors = match self {
            AppError::Validation(errors) | AppError::ConflictingRows(errors) => errors.clone(),
            AppError::BadRequest {
                detail,
                field: Some(field),
            } => vec![FieldError::new(field.clone(), "malformed", detail.clone())],
            _ => Vec::new(),
        };
        let detail = match self {
            AppError::Validation(errors) | AppError::ConflictingRows(errors) => errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        };
        Problem {
            problem_type: format!("/problems/{}", self.code()),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail,
            errors,
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) | AppError::ConflictingRows(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::Internal(cause) = self {
            tracing::error!(error = ?cause, "internal error");
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        match self {
            AppError::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"hashgate\""));
            }
            AppError::ServiceUnavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        response.body(serde_json::to_string(&self.problem()).unwrap_or_default())
    }
}

impl From<crate::crypto::EncryptionError> for AppError {
    fn from(error: crate::crypto::EncryptionError) -> Self {
        AppError::internal(error)
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match &error {
            Error::NotFound => AppError::NotFound("no such record".into()),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                AppError::Conflict("a record with the same unique key already exists".into())
            }
            // SQLite gives up waiting for the single writer lock: the client may retry.
            Error::DatabaseError(_, info) if info.message().contains("database is locked") => {
                AppError::ServiceUnavailable("the database is busy, retry shortly".into())
            }
            // The connection to PostgreSQL broke (a restart, a fail-over) or the server is
            // shutting down or starting: nothing was committed and the client may retry.
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
            | Error::BrokenTransactionManager => AppError::ServiceUnavailable(
                "the database connection was lost, retry shortly".into(),
            ),
            Error::DatabaseError(_, info) if server_unavailable(info.message()) => {
                AppError::ServiceUnavailable("the database is restarting, retry shortly".into())
            }
            _ => AppError::Internal(error.into()),
        }
    }
}

/// PostgreSQL's messages for a server that is going away or not yet accepting work (SQLSTATE
/// 57P01–57P03 and 08006); diesel reports them with no kind of their own.
fn server_unavailable(message: &str) -> bool {
    [
        "terminating connection",
        "the database system is shutting down",
        "the database system is starting up",
        "the database system is in recovery mode",
        "server closed the connection unexpectedly",
        "no connection to the server",
    ]
    .iter()
    .any(|fragment| message.contains(fragment))
}

impl From<diesel::r2d2::PoolError> for AppError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        tracing::warn!(%error, "no database connection available");
        AppError::ServiceUnavailable("no database connection is available, retry shortly".into())
    }
}

/// Human descriptions of the problem types, served at `/problems/{code}`.
pub const PROBLEM_TYPES: &[(&str, &str)] = &[
    ("validation-error", "The request body parsed, but one or more fields are invalid. `errors` lists each field with a code and a message."),
    ("bad-request", "The request is malformed: invalid JSON, an unknown field, a wrong type, a bad identifier or query parameter."),
    ("unauthorized", "No bearer token was sent, or the token is unknown or revoked."),
    ("forbidden", "The token is valid but its role, user or jurisdiction does not allow this request."),
    ("not-found", "The resource or route does not exist."),
    ("conflict", "The request conflicts with the current state: a duplicate, or an Idempotency-Key reused with a different request."),
    ("payload-too-large", "The request body is larger than the configured limit."),
    ("unsupported-media-type", "The request body must be sent as application/json."),
    ("method-not-allowed", "The route exists but not for this HTTP method."),
    ("service-unavailable", "The database is not reachable or busy; retry after the indicated delay."),
    ("internal-error", "An unexpected error. It has been logged with the request id."),
];
