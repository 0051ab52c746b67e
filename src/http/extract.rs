//! Extractors that turn every kind of bad input into a clear 4xx problem.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::mime;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use crate::error::{AppError, FieldError};

/// The configured maximum request body, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A JSON request body, read within the size limit. Handlers parse it with [`JsonBody::parse`]
/// after checking the caller, so a caller without the right role learns nothing from validation.
pub struct JsonBody(Vec<u8>);

impl JsonBody {
    /// Parses (unknown fields are refused by the types) and validates the body.
    pub fn parse<T: DeserializeOwned + Validate>(&self) -> Result<T, AppError> {
        parse_validated(&self.0)
    }
}

/// Parses JSON bytes (unknown fields are refused by the types) and validates the value.
pub fn parse_validated<T: DeserializeOwned + Validate>(bytes: &[u8]) -> Result<T, AppError> {
    let value = parse_json::<T>(bytes)?;
    value.validate().map_err(validation_problem)?;
    Ok(value)
}

/// One part of a `multipart/form-data` body.
pub struct Part {
    /// The form field name.
    pub name: String,
    /// The file name the client gave, without any directory.
    pub file_name: Option<String>,
    pub bytes: Vec<u8>,
}

pub fn is_multipart(request: &HttpRequest) -> bool {
    matches!(
        request.mime_type(),
        Ok(Some(found)) if found.type_() == mime::MULTIPART && found.subtype() == mime::FORM_DATA
    )
}

/// Reads every part of a `multipart/form-data` body, `limit` bytes in all.
pub async fn read_multipart(
    request: &HttpRequest,
    payload: actix_web::web::Payload,
    limit: usize,
) -> Result<Vec<Part>, AppError> {
    let mut multipart = actix_multipart::Multipart::new(request.headers(), payload);
    let mut parts = Vec::new();
    let mut total = 0usize;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|error| {
            AppError::bad_request(format!("the multipart body could not be read: {error}"))
        })?;
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field
            .content_disposition()
            .and_then(|disposition| disposition.get_filename())
            .map(|name| name.rsplit(['/', '\\']).next().unwrap_or(name).to_string())
            .filter(|name| !name.is_empty());
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|error| {
                AppError::bad_request(format!("the part `{name}` could not be read: {error}"))
            })?;
            total += chunk.len();
            if total > limit {
                return Err(AppError::PayloadTooLarge { limit });
            }
            bytes.extend_from_slice(&chunk);
        }
        parts.push(Part {
            name,
            file_name,
            bytes,
        });
    }
    Ok(parts)
}

/// Reads a JSON body of at most `limit` bytes from a raw payload.
pub async fn read_json_payload(
    request: &HttpRequest,
    mut payload: actix_web::web::Payload,
    limit: usize,
) -> Result<Vec<u8>, AppError> {
    if !is_json(request) {
        return Err(AppError::UnsupportedMediaType(
            "send the body as Content-Type: application/json or multipart/form-data".into(),
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| {
            AppError::bad_request(format!("the request body could not be read: {error}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(AppError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl FromRequest for JsonBody {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = request
            .app_data::<BodyLimit>()
            .map(|limit| limit.0)
            .unwrap_or(256 * 1024);
        let content_type_ok = is_json(request);
        let declared_length = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !content_type_ok {
                return Err(AppError::UnsupportedMediaType(
                    "send the body as Content-Type: application/json".into(),
                ));
            }
            if declared_length.is_some_and(|length| length > limit) {
                return Err(AppError::PayloadTooLarge { limit });
            }
            let mut body = Vec::with_capacity(limit.min(64 * 1024));
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|error| {
                    AppError::bad_request(format!("the request body could not be read: {error}"))
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(AppError::PayloadTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(JsonBody(body))
        })
    }
}

fn is_json(request: &HttpRequest) -> bool {
    match request.mime_type() {
        Ok(Some(mime)) => mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON),
        _ => false,
    }
}

/// Parses JSON, naming the field at fault: syntax errors are 400, wrong shapes 422.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    if body.is_empty() {
        return Err(AppError::bad_request(
            "the request body is empty; send a JSON object",
        ));
    }
    // Syntax first (400), then shape (422): serde_json reports some shape errors, such as a
    // number where an enum is expected, as syntax errors when both are checked in one pass.
    let document: serde_json::Value =
        serde_json::from_slice(body).map_err(|error| malformed(&error))?;
    serde_path_to_error::deserialize::<_, T>(document).map_err(|error| {
        let message = strip_position(&error.inner().to_string());
        let path = error.path().to_string();
        let field = match named_field(&message) {
            Some(name) if path == "." => name,
            // serde_path_to_error already ends the path with an unknown field's name.
            Some(name) if !path.ends_with(&name) => format!("{path}.{name}"),
            _ => path,
        };
        let code = if message.starts_with("unknown field") {
            "unknown_field"
        } else if message.starts_with("missing field") {
            "required"
        } else if message.starts_with("unknown variant") {
            "invalid_enum"
        } else {
            "invalid_type"
        };
        AppError::invalid_field(field, code, message)
    })
}

fn malformed(error: &serde_json::Error) -> AppError {
    AppError::bad_request(format!(
        "malformed JSON at line {} column {}: {}",
        error.line(),
        error.column(),
        strip_position(&error.to_string())
    ))
}

/// Query parameters, deserialised with the failing parameter named. A bad parameter is reported
/// by [`QueryParams::into_inner`], not by the extraction: actix resolves a handler's extractors
/// together, and a query error must not answer before the token and role checks do (a caller
/// without access learns nothing about the parameters).
pub struct QueryParams<T>(Result<T, AppError>);

impl<T> QueryParams<T> {
    pub fn into_inner(self) -> Result<T, AppError> {
        self.0
    }
}

impl<T: DeserializeOwned> FromRequest for QueryParams<T> {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let pairs = form_urlencoded::parse(request.query_string().as_bytes());
        let deserializer = serde_urlencoded::Deserializer::new(pairs);
        let result = serde_path_to_error::deserialize::<_, T>(deserializer).map_err(|error| {
            let message = error.inner().to_string();
            let path = error.path().to_string();
            let parameter = named_field(&message).unwrap_or(path);
            AppError::bad_field(
                parameter.clone(),
                format!("invalid query parameter `{parameter}`: {message}"),
            )
        });
        std::future::ready(Ok(QueryParams(result)))
    }
}

/// serde's messages end with " at line 1 column 9"; the field is more useful to the caller.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

/// "unknown field `x`, expected …" and "missing field `x`" name a field the path does not.
fn named_field(message: &str) -> Option<String> {
    if message.starts_with("unknown field") || message.starts_with("missing field") {
        message.split('`').nth(1).map(str::to_string)
    } else {
        None
    }
}

/// Flattens validator's nested errors into one list of `path: message`.
pub fn validation_problem(errors: ValidationErrors) -> AppError {
    let mut fields = Vec::new();
    flatten(&errors, "", &mut fields);
    fields.sort_by(|a, b| a.field.cmp(&b.field));
    AppError::Validation(fields)
}

fn flatten(errors: &ValidationErrors, prefix: &str, out: &mut Vec<FieldError>) {
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for error in list {
                    let message = error
                        .message
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| describe(error));
                    out.push(FieldError::new(
                        path.clone(),
                        error.code.to_string(),
                        message,
                    ));
                }
            }
            ValidationErrorsKind::Struct(inner) => flatten(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    flatten(inner, &format!("{path}[{index}]"), out);
                }
            }
        }
    }
}

fn describe(error: &validator::ValidationError) -> String {
    let param = |name: &str| error.params.get(name).map(|v| v.to_string());
    match error.code.as_ref() {
        "length" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be {min} to {max} characters long"),
            (Some(min), None) => format!("must be at least {min} characters long"),
            (None, Some(max)) => format!("must be at most {max} characters long"),
            _ => "has the wrong length".into(),
        },
        "email" => "must be a valid email address".into(),
        "range" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max}"),
            _ => "is out of range".into(),
        },
        other => format!("is invalid ({other})"),
    }
}

/// The request id assigned by the observing middleware.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl FromRequest for RequestId {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let id = request
            .extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(uuid::Uuid::new_v4().to_string()));
        std::future::ready(Ok(id))
    }
}

/// The optional `Idempotency-Key` header, checked for shape.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub Option<String>);

impl FromRequest for IdempotencyKey {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match request.headers().get("Idempotency-Key") {
            None => Ok(IdempotencyKey(None)),
            Some(value) => match value.to_str() {
                Ok(key) => crate::idempotency::validate_key(key)
                    .map(|_| IdempotencyKey(Some(key.to_string()))),
                Err(_) => Err(crate::idempotency::invalid_key()),
            },
        };
        std::future::ready(result)
    }
}

/// Parses an identifier from the path, naming the parameter when it is not a UUID.
pub fn parse_uuid(name: &str, value: &str) -> Result<String, AppError> {
    uuid::Uuid::parse_str(value)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| AppError::bad_field(name, format!("`{value}` is not a UUID")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        kind: Kind,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Alpha,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn field_of(error: AppError) -> (String, String) {
        match error {
            AppError::Validation(errors) => (errors[0].field.clone(), errors[0].code.clone()),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn names_the_field_at_fault() {
        let error = parse_json::<Sample>(br#"{"name":"a","kind":"beta"}"#).unwrap_err();
        assert_eq!(field_of(error), ("kind".into(), "invalid_enum".into()));
        let error = parse_json::<Sample>(br#"{"name":"a","kind":"alpha","x":1}"#).unwrap_err();
        assert_eq!(field_of(error), ("x".into(), "unknown_field".into()));
        let error = parse_json::<Sample>(br#"{"kind":"alpha"}"#).unwrap_err();
        assert_eq!(field_of(error), ("name".into(), "required".into()));
        let error = parse_json::<Sample>(br#"{"name":"a","kind":"alpha","inner":{"count":-1}}"#)
            .unwrap_err();
        assert_eq!(
            field_of(error),
            ("inner.count".into(), "invalid_type".into())
        );
    }

    #[test]
    fn syntax_errors_are_bad_requests() {
        assert!(matches!(
            parse_json::<Sample>(b"{\"name\":"),
            Err(AppError::BadRequest { .. })
        ));
        assert!(matches!(
            parse_json::<Sample>(br#"{"name":"a","kind":"alpha"} trailing"#),
            Err(AppError::BadRequest { .. })
        ));
        assert!(matches!(
            parse_json::<Sample>(b""),
            Err(AppError::BadRequest { .. })
        ));
    }

    #[test]
    fn uuids_are_checked_and_normalised() {
        assert_eq!(
            parse_uuid("id", "8F0E6C1A-2B7D-4C55-9A43-0C9F3F2B1E77").unwrap(),
            "8f0e6c1a-2b7d-4c55-9a43-0c9f3f2b1e77"
        );
        assert!(parse_uuid("id", "42").is_err());
    }
}
