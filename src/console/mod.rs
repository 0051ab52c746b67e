//! The console: server-rendered pages served by the service itself. Officers work the queues;
//! platform users download their statements. Both log in with their API token; the session lives
//! in an HTTP-only, same-site cookie, and every form carries the session's CSRF token.

mod application;
pub mod html;
mod monitoring;
mod queue;
mod reports;
pub mod session;
mod statements;

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use serde::Deserialize;

use crate::auth::{store as tokens, Role};
use crate::AppState;
use html::{escape, Frame};
use session::Session;

pub const SESSION_COOKIE: &str = "hg_session";
const LOGIN_CSRF_COOKIE: &str = "hg_login_csrf";

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/console").route(web::get().to(home)))
        .service(
            web::resource("/console/login")
                .route(web::get().to(login_page))
                .route(web::post().to(login)),
        )
        .service(web::resource("/console/logout").route(web::post().to(logout)))
        .service(web::resource("/console/queue").route(web::get().to(queue::page)))
        .service(
            web::resource("/console/applications/{id}").route(web::get().to(application::page)),
        )
        .service(
            web::resource("/console/applications/{id}/documents/{document_id}")
                .route(web::get().to(application::document)),
        )
        .service(
            web::resource("/console/applications/{id}/{action}")
                .route(web::post().to(application::act)),
        )
        .service(
            web::resource("/console/hits/{hit_id}/review")
                .route(web::post().to(application::review_hit)),
        )
        .service(web::resource("/console/alerts").route(web::get().to(monitoring::alerts)))
        .service(
            web::resource("/console/cases")
                .route(web::get().to(monitoring::cases_page))
                .route(web::post().to(monitoring::open_case)),
        )
        .service(web::resource("/console/cases/{id}").route(web::get().to(monitoring::case_page)))
        .service(
            web::resource("/console/cases/{id}/notes/{note_id}")
                .route(web::get().to(monitoring::evidence)),
        )
        .service(
            web::resource("/console/cases/{id}/{action}")
                .route(web::post().to(monitoring::case_action)),
        )
        .service(
            web::resource("/console/withdrawals").route(web::get().to(monitoring::withdrawals)),
        )
        .service(
            web::resource("/console/withdrawals/{id}/review")
                .route(web::post().to(monitoring::review_withdrawal)),
        )
        .service(web::resource("/console/users/{id}").route(web::get().to(monitoring::user_view)))
        .service(web::resource("/console/reports").route(web::get().to(reports::page)))
        .service(
            web::resource("/console/reports/{id}/{name}").route(web::get().to(reports::download)),
        )
        .service(web::resource("/console/me").route(web::get().to(statements::page)))
        .service(web::resource("/console/me/statement").route(web::get().to(statements::download)))
        .service(
            web::resource("/console/me/orders/{id}/certificate.pdf")
                .route(web::get().to(statements::certificate)),
        )
        .service(web::resource("/console/assets/console.css").route(web::get().to(stylesheet)))
        .service(web::resource("/console/assets/console.js").route(web::get().to(script)));
}

/// Why a console request cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("log in first")]
    LoginRequired,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<crate::error::AppError> for ConsoleError {
    fn from(error: crate::error::AppError) -> Self {
        use crate::error::AppError;
        match error {
            AppError::Forbidden(message) => ConsoleError::Forbidden(message),
            AppError::NotFound(message) => ConsoleError::NotFound(message),
            AppError::Unauthorized(_) => ConsoleError::LoginRequired,
            AppError::Internal(cause) => ConsoleError::Internal(cause),
            other => ConsoleError::BadRequest(other.to_string()),
        }
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::LoginRequired => StatusCode::SEE_OTHER,
            ConsoleError::Forbidden(_) => StatusCode::FORBIDDEN,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ConsoleError::LoginRequired = self {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/console/login"))
                .finish();
        }
        if let ConsoleError::Internal(cause) = self {
            tracing::error!(error = ?cause, "console request failed");
        }
        let body = html::page(
            "Error",
            &Frame {
                officer: None,
                csrf_token: None,
            },
            &format!(
                r#"<section class="card error"><h1>{}</h1><p>{}</p><p><a href="/console/queue">Back to the queue</a></p></section>"#,
                self.status_code().as_u16(),
                escape(&self.to_string())
            ),
        );
        secure_headers(HttpResponse::build(self.status_code())).body(body)
    }
}

/// HTML responses: no caching, no framing by others, scripts and styles from this origin only.
pub fn secure_headers(
    mut builder: actix_web::HttpResponseBuilder,
) -> actix_web::HttpResponseBuilder {
    builder
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "same-origin"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; frame-src 'self'; object-src 'none'; \
             base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ));
    builder
}

/// The live session behind the request's cookie, or a redirect to the login.
pub(crate) fn live_session(
    request: &HttpRequest,
) -> impl Future<Output = Result<Session, ConsoleError>> + 'static {
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let secret = request
        .cookie(SESSION_COOKIE)
        .map(|c| c.value().to_string());
    async move {
        let state = state.ok_or_else(|| ConsoleError::Internal(anyhow::anyhow!("no state")))?;
        let secret = secret.ok_or(ConsoleError::LoginRequired)?;
        state
            .db
            .run(move |connection| session::find(connection, &secret, crate::db::now()))
            .await?
            .ok_or(ConsoleError::LoginRequired)
    }
}

/// The page frame of a logged-in session: who, and the logout form's CSRF token.
pub(crate) fn frame_of(session: &Session) -> Frame<'_> {
    Frame {
        officer: Some((&session.caller.name, session.caller.role.as_str())),
        csrf_token: Some(&session.csrf_token),
    }
}

/// The logged-in officer of a console request.
pub struct Officer(pub Session);

impl FromRequest for Officer {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Officer, ConsoleError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = live_session(request);
        Box::pin(async move {
            let session = session.await?;
            if !Role::OFFICERS.contains(&session.caller.role) {
                return Err(ConsoleError::Forbidden(
                    "this page is for officers; your statements are at /console/me".into(),
                ));
            }
            Ok(Officer(session))
        })
    }
}

impl Officer {
    pub fn frame(&self) -> Frame<'_> {
        frame_of(&self.0)
    }

    /// Refuses a form without this session's CSRF token, or sent from another origin.
    pub fn check_form(
        &self,
        request: &HttpRequest,
        csrf: Option<&str>,
    ) -> Result<(), ConsoleError> {
        check_origin(request)?;
        match csrf {
            Some(token) if session::same_secret(token, &self.0.csrf_token) => Ok(()),
            _ => Err(ConsoleError::Forbidden(
                "the form's security token is missing or stale; reload the page and try again"
                    .into(),
            )),
        }
    }
}

/// A browser names the page a form was sent from: it must be this service.
fn check_origin(request: &HttpRequest) -> Result<(), ConsoleError> {
    let Some(origin) = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let info = request.connection_info();
    let expected = format!("{}://{}", info.scheme(), info.host());
    if origin == expected {
        Ok(())
    } else {
        Err(ConsoleError::Forbidden(format!(
            "a form from {origin} may not act on this console"
        )))
    }
}

fn is_https(request: &HttpRequest) -> bool {
    request.connection_info().scheme() == "https"
}

/// A one-line outcome shown at the top of the page a form returns to.
#[derive(Deserialize)]
pub struct Notice {
    notice: Option<String>,
    error: Option<String>,
}

impl Notice {
    pub fn html(&self) -> String {
        let mut html = String::new();
        if let Some(text) = &self.notice {
            html.push_str(&format!(
                r#"<p class="notice" role="status" id="notice">{}</p>"#,
                escape(text)
            ));
        }
        if let Some(text) = &self.error {
            html.push_str(&format!(
                r#"<p class="notice error" role="alert" id="error">{}</p>"#,
                escape(text)
            ));
        }
        html
    }
}

/// Back to `location` with a notice or an error.
pub fn redirect_with(location: &str, result: Result<String, String>) -> HttpResponse {
    let query = match result {
        Ok(message) => serde_urlencoded::to_string([("notice", message)]),
        Err(message) => serde_urlencoded::to_string([("error", message)]),
    }
    .unwrap_or_default();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("{location}?{query}")))
        .finish()
}

/// An error as one line for a notice.
pub fn error_text(error: &crate::error::AppError) -> String {
    match error {
        crate::error::AppError::Validation(fields) => fields
            .iter()
            .map(|field| format!("{}: {}", field.field, field.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// Parses a URL-encoded form body.
pub fn parse_form<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ConsoleError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|error| ConsoleError::BadRequest(format!("the form could not be read: {error}")))
}

/// Where a role lands after logging in.
fn landing_page(role: Role) -> &'static str {
    match role {
        Role::User => "/console/me",
        Role::Regulator => "/console/reports",
        _ => "/console/queue",
    }
}

async fn home(officer: Result<Officer, ConsoleError>) -> HttpResponse {
    let target = match officer {
        Ok(_) => "/console/queue",
        Err(ConsoleError::Forbidden(_)) => "/console/me",
        Err(_) => "/console/login",
    };
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, target))
        .finish()
}

fn login_form(csrf: &str, message: Option<&str>) -> String {
    let notice = message
        .map(|m| format!(r#"<p class="notice error" role="alert">{}</p>"#, escape(m)))
        .unwrap_or_default();
    format!(
        r#"<section class="card login">
<h1>Log in</h1>
<p>Use your API token (officers, or platform users for their statements). The console keeps you logged in for {hours} hours on this browser.</p>
{notice}
<form method="post" action="/console/login">
<input type="hidden" name="csrf" value="{csrf}">
<label for="token">API token</label>
<input type="password" id="token" name="token" autocomplete="off" autofocus required>
<button type="submit" id="login">Log in</button>
</form>
</section>"#,
        hours = session::SESSION_HOURS,
        csrf = escape(csrf),
    )
}

fn login_response(
    status: StatusCode,
    request: &HttpRequest,
    message: Option<&str>,
) -> HttpResponse {
    let csrf = session::random_secret();
    let body = html::page(
        "Log in",
        &Frame {
            officer: None,
            csrf_token: None,
        },
        &login_form(&csrf, message),
    );
    secure_headers(HttpResponse::build(status))
        .cookie(
            Cookie::build(LOGIN_CSRF_COOKIE, csrf)
                .path("/console/login")
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(is_https(request))
                .finish(),
        )
        .body(body)
}

async fn login_page(request: HttpRequest) -> HttpResponse {
    login_response(StatusCode::OK, &request, None)
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: Option<String>,
    token: String,
}

async fn login(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    check_origin(&request)?;
    let form: LoginForm = parse_form(&body)?;
    let expected = request
        .cookie(LOGIN_CSRF_COOKIE)
        .map(|c| c.value().to_string());
    let csrf_ok = matches!((&form.csrf, &expected), (Some(sent), Some(cookie)) if session::same_secret(sent, cookie));
    if !csrf_ok {
        return Ok(login_response(
            StatusCode::FORBIDDEN,
            &request,
            Some("The login form expired; please try again."),
        ));
    }
    let token_hash = crate::auth::hash_token(form.token.trim());
    let started = state
        .db
        .run(move |connection| {
            let Some(caller) = tokens::authenticate(connection, &token_hash)? else {
                return Ok(Err("That token is unknown or revoked."));
            };
            if !Role::may_use_console(caller.role) {
                return Ok(Err("The console is for officers and platform users."));
            }
            crate::db::write_transaction(connection, |connection| {
                let secret = session::start(connection, &caller, crate::db::now())?;
                crate::audit::store::append(
                    connection,
                    crate::audit::NewAuditEntry::new(
                        caller.actor(),
                        "console.login",
                        "token",
                        &caller.token_id,
                        None,
                    ),
                )?;
                Ok::<_, crate::error::AppError>(Ok((secret, caller.role)))
            })
        })
        .await?;
    match started {
        Err(message) => Ok(login_response(
            StatusCode::UNAUTHORIZED,
            &request,
            Some(message),
        )),
        Ok((secret, role)) => Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, landing_page(role)))
            .cookie(
                Cookie::build(SESSION_COOKIE, secret)
                    .path("/console")
                    .http_only(true)
                    .same_site(SameSite::Strict)
                    .secure(is_https(&request))
                    .max_age(actix_web::cookie::time::Duration::hours(
                        session::SESSION_HOURS,
                    ))
                    .finish(),
            )
            .finish()),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn logout(
    state: web::Data<AppState>,
    officer: Officer,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let form: CsrfForm = parse_form(&body)?;
    officer.check_form(&request, form.csrf.as_deref())?;
    if let Some(secret) = request
        .cookie(SESSION_COOKIE)
        .map(|c| c.value().to_string())
    {
        state
            .db
            .run(move |connection| Ok(session::end(connection, &secret, crate::db::now())?))
            .await?;
    }
    let mut removal = Cookie::build(SESSION_COOKIE, "").path("/console").finish();
    removal.make_removal();
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/console/login"))
        .cookie(removal)
        .finish())
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "max-age=3600"))
        .body(include_str!("assets/console.css"))
}

async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "max-age=3600"))
        .body(include_str!("assets/console.js"))
}
