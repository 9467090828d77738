//! The console's HTTP server: a JSON API and the web page (`page/`, embedded), on axum.
//!
//! Reads are open; every write needs `Authorization: Bearer <token>`, and is written to the
//! audit log (`data_dir/audit.jsonl`) before anything is done: a line when it is refused (no
//! or unknown token, a bad request), a `requested` line before it is acted on (if that line
//! cannot be written, nothing is done), and a `done` or `failed` line after. Errors are mapped
//! in one place ([`ApiError`]) to a status and `{"error": ..., "field": ...}`.
//!
//! See `docs/console.md` for every endpoint with an example.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use intersections::messages::CommandAction;
use intersections::Ms;
use serde::{Deserialize, Serialize};

use super::journal::Journal;
use super::{operator_for, ActionError, Centre, Operator};
use crate::deploy::Publish;
use crate::serve::unix_now;

/// Audit lines kept in memory for the API (the file keeps them all).
const AUDIT_KEEP: usize = 10_000;

/// One line of the audit log.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AuditEntry {
    /// When (centre clock, Unix ms).
    pub time_ms: i64,
    /// Ties the lines of one request together.
    pub request: u64,
    /// Who, from the token; `null` when the token was missing or unknown.
    pub operator: Option<String>,
    /// `approve`, `reject`, `rollback`, `command`.
    pub action: String,
    /// What it was aimed at: `decision 12`, `region/group`, `region/intersection`.
    pub target: String,
    /// `refused` (not authenticated, or a bad request), `requested` (about to be acted on),
    /// `done` or `failed`.
    pub result: String,
    /// Why, or what was done.
    pub detail: serde_json::Value,
}

struct Audit {
    journal: Journal,
    entries: VecDeque<AuditEntry>,
    next_request: u64,
}

/// Publishes what an action produced (the service's MQTT client).
pub type Publisher = Arc<dyn Fn(Vec<Publish>) + Send + Sync>;

struct AppInner {
    centre: Arc<Mutex<Centre>>,
    operators: Vec<Operator>,
    audit: Mutex<Audit>,
    publish: Publisher,
}

/// The console's HTTP application.
#[derive(Clone)]
pub struct App(Arc<AppInner>);

impl App {
    /// The audit log is `data_dir/audit.jsonl`, read back on start.
    pub fn new(
        centre: Arc<Mutex<Centre>>,
        operators: Vec<Operator>,
        data_dir: &Path,
        publish: Publisher,
    ) -> std::io::Result<App> {
        let (journal, old) = Journal::open::<AuditEntry>(&data_dir.join("audit.jsonl"))?;
        let next_request = old.iter().map(|e| e.request).max().map_or(1, |r| r + 1);
        let mut entries: VecDeque<AuditEntry> = old.into();
        while entries.len() > AUDIT_KEEP {
            entries.pop_front();
        }
        Ok(App(Arc::new(AppInner {
            centre,
            operators,
            audit: Mutex::new(Audit {
                journal,
                entries,
                next_request,
            }),
            publish,
        })))
    }

    /// The routes: the page at `/`, the API under `/api/`.
    pub fn router(self) -> Router {
        Router::new()
            .route("/", get(page_html))
            .route("/console.js", get(page_js))
            .route("/console.css", get(page_css))
            .route("/api/regions", get(regions))
            .route("/api/regions/{region}/live", get(live))
            .route("/api/decisions", get(decisions))
            .route("/api/decisions/{id}", get(decision))
            .route("/api/deployments", get(deployments))
            .route("/api/commands", get(commands))
            .route("/api/audit", get(audit))
            .route("/api/whoami", get(whoami))
            .route("/api/decisions/{id}/approve", post(approve))
            .route("/api/decisions/{id}/reject", post(reject))
            .route(
                "/api/regions/{region}/groups/{group}/rollback",
                post(rollback),
            )
            .route(
                "/api/regions/{region}/intersections/{intersection}/command",
                post(command),
            )
            .fallback(|| async { ApiError::not_found("path", "no such endpoint") })
            .with_state(self)
    }

    fn centre(&self) -> std::sync::MutexGuard<'_, Centre> {
        // A panic while holding the lock leaves the data as it was between two whole calls.
        self.0.centre.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append an audit line; returns its request id.
    fn audit(
        &self,
        request: Option<u64>,
        operator: Option<&str>,
        action: &str,
        target: &str,
        result: &str,
        detail: serde_json::Value,
    ) -> Result<u64, ApiError> {
        let mut a = self.0.audit.lock().unwrap_or_else(|p| p.into_inner());
        let request = request.unwrap_or_else(|| {
            a.next_request += 1;
            a.next_request - 1
        });
        // A target comes from the URL: bounded, so a refused request cannot write a huge line.
        let target: String = if target.chars().count() > 200 {
            target.chars().take(200).chain("…".chars()).collect()
        } else {
            target.into()
        };
        let e = AuditEntry {
            time_ms: unix_now().0,
            request,
            operator: operator.map(String::from),
            action: action.into(),
            target,
            result: result.into(),
            detail,
        };
        if let Err(err) = a.journal.append(&e) {
            tracing::error!(file = %a.journal.path().display(), error = %err, "audit log not written");
            return Err(ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                field: None,
                message: "the audit log cannot be written: nothing was done".into(),
            });
        }
        a.entries.push_back(e);
        if a.entries.len() > AUDIT_KEEP {
            a.entries.pop_front();
        }
        Ok(request)
    }

    fn operator(&self, headers: &HeaderMap) -> Result<String, String> {
        let Some(h) = headers.get(header::AUTHORIZATION) else {
            return Err("no Authorization header".into());
        };
        let token = h
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or("Authorization is not `Bearer <token>`")?;
        operator_for(&self.0.operators, token)
            .map(|o| o.name.clone())
            .ok_or_else(|| "unknown token".into())
    }

    /// A write: authenticate, check the request, audit, act, publish, audit the result.
    fn write<V>(
        &self,
        headers: &HeaderMap,
        action: &str,
        target: &str,
        check: impl FnOnce() -> Result<V, ApiError>,
        act: impl FnOnce(
            &mut Centre,
            V,
            &str,
            Ms,
        ) -> Result<(Vec<Publish>, serde_json::Value), ActionError>,
    ) -> Response {
        let operator = match self.operator(headers) {
            Ok(o) => o,
            Err(why) => {
                let audited = self.audit(
                    None,
                    None,
                    action,
                    target,
                    "refused",
                    serde_json::json!(why),
                );
                return match audited {
                    Ok(_) => ApiError::unauthorized(why).into_response(),
                    Err(e) => e.into_response(),
                };
            }
        };
        let v = match check() {
            Ok(v) => v,
            Err(e) => {
                let audited = self.audit(
                    None,
                    Some(&operator),
                    action,
                    target,
                    "refused",
                    serde_json::json!(e.message),
                );
                return match audited {
                    Ok(_) => e.into_response(),
                    Err(e) => e.into_response(),
                };
            }
        };
        let request = match self.audit(
            None,
            Some(&operator),
            action,
            target,
            "requested",
            serde_json::Value::Null,
        ) {
            Ok(r) => r,
            Err(e) => return e.into_response(),
        };
        let now = unix_now();
        let done = {
            let mut c = self.centre();
            act(&mut c, v, &operator, now)
        };
        match done {
            Ok((out, detail)) => {
                (self.0.publish)(out);
                let _ = self.audit(
                    Some(request),
                    Some(&operator),
                    action,
                    target,
                    "done",
                    detail.clone(),
                );
                Json(
                    serde_json::json!({"request": request, "operator": operator, "result": detail}),
                )
                .into_response()
            }
            Err(e) => {
                let e = ApiError::from(e);
                let _ = self.audit(
                    Some(request),
                    Some(&operator),
                    action,
                    target,
                    "failed",
                    serde_json::json!(e.message),
                );
                e.into_response()
            }
        }
    }
}

/// An error answer: status, the field (or path part) at fault, and what is wrong.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    field: Option<String>,
    message: String,
}

impl ApiError {
    fn bad(field: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            field: Some(field.into()),
            message: message.into(),
        }
    }
    fn not_found(field: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            field: Some(field.into()),
            message: message.into(),
        }
    }
    fn unauthorized(why: String) -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            field: Some("Authorization".into()),
            message: format!("{why}: writes need `Authorization: Bearer <token>`"),
        }
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        let message = e.to_string();
        match e {
            ActionError::NotFound { field, .. } => ApiError::not_found(&field, message),
            ActionError::Invalid { field, .. } => ApiError::bad(&field, message),
            ActionError::Conflict(_) => ApiError {
                status: StatusCode::CONFLICT,
                field: None,
                message,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(serde_json::json!({"error": self.message, "field": self.field})),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"greenwave\""),
            );
        }
        r
    }
}

type Params = Query<BTreeMap<String, String>>;

fn limit(q: &BTreeMap<String, String>) -> Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(100),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=super::KEEP).contains(n))
            .ok_or_else(|| {
                ApiError::bad(
                    "limit",
                    format!("limit: {s:?} is not a number from 1 to {}", super::KEEP),
                )
            }),
    }
}

fn decision_id(id: &str) -> Result<u64, ApiError> {
    id.parse().map_err(|_| {
        let shown: String = id.chars().take(40).collect();
        ApiError::bad("id", format!("id: {shown:?} is not a decision number"))
    })
}

async fn regions(State(app): State<App>) -> Response {
    Json(serde_json::json!({"now_ms": unix_now().0, "regions": app.centre().regions()}))
        .into_response()
}

async fn live(State(app): State<App>, UrlPath(region): UrlPath<String>) -> Response {
    match app.centre().live(unix_now(), &region) {
        Ok(v) => Json(v).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn decisions(State(app): State<App>, Query(q): Params) -> Response {
    let n = match limit(&q) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let list = app
        .centre()
        .decisions(q.get("region").map(String::as_str), n);
    Json(serde_json::json!({"now_ms": unix_now().0, "decisions": list})).into_response()
}

async fn decision(State(app): State<App>, UrlPath(id): UrlPath<String>) -> Response {
    let id = match decision_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    match app.centre().decision(id) {
        Some(d) => Json(d.clone()).into_response(),
        None => ApiError::not_found("id", format!("decision {id} not found")).into_response(),
    }
}

async fn deployments(State(app): State<App>, Query(q): Params) -> Response {
    match limit(&q) {
        Ok(n) => Json(
            serde_json::json!({"now_ms": unix_now().0, "deployments": app.centre().deployments(n)}),
        )
        .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn commands(State(app): State<App>, Query(q): Params) -> Response {
    match limit(&q) {
        Ok(n) => {
            Json(serde_json::json!({"now_ms": unix_now().0, "commands": app.centre().commands(n)}))
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn audit(State(app): State<App>, Query(q): Params) -> Response {
    let n = match limit(&q) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let a = app.0.audit.lock().unwrap_or_else(|p| p.into_inner());
    let list: Vec<&AuditEntry> = a.entries.iter().rev().take(n).collect();
    Json(serde_json::json!({"now_ms": unix_now().0, "audit": list})).into_response()
}

async fn whoami(State(app): State<App>, headers: HeaderMap) -> Response {
    match app.operator(&headers) {
        Ok(o) => Json(serde_json::json!({"operator": o})).into_response(),
        Err(why) => ApiError::unauthorized(why).into_response(),
    }
}

async fn approve(
    State(app): State<App>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    app.write(
        &headers,
        "approve",
        &format!("decision {id}"),
        || decision_id(&id),
        |c, id, op, now| {
            let out = c.approve(now, id, op)?;
            Ok((
                out,
                serde_json::json!(format!(
                    "decision {id} approved: plans sent, waiting for acks"
                )),
            ))
        },
    )
}

async fn reject(
    State(app): State<App>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    app.write(
        &headers,
        "reject",
        &format!("decision {id}"),
        || decision_id(&id),
        |c, id, op, now| {
            c.reject(now, id, op)?;
            Ok((
                Vec::new(),
                serde_json::json!(format!("decision {id} rejected: the plans in force stay")),
            ))
        },
    )
}

async fn rollback(
    State(app): State<App>,
    headers: HeaderMap,
    UrlPath((region, group)): UrlPath<(String, String)>,
) -> Response {
    app.write(
        &headers,
        "rollback",
        &format!("{region}/{group}"),
        || Ok(()),
        |c, (), op, now| {
            let out = c.roll_back(now, &region, &group, op)?;
            let sent: Vec<&str> = out.iter().map(|p| p.topic.as_str()).collect();
            let detail = serde_json::json!({"sent": sent});
            Ok((out, detail))
        },
    )
}

async fn command(
    State(app): State<App>,
    headers: HeaderMap,
    UrlPath((region, intersection)): UrlPath<(String, String)>,
    body: Bytes,
) -> Response {
    app.write(
        &headers,
        "command",
        &format!("{region}/{intersection}"),
        || {
            let de = &mut serde_json::Deserializer::from_slice(&body);
            serde_path_to_error::deserialize::<_, CommandAction>(de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.inner().to_string();
                let missing = inner
                    .strip_prefix("missing field `")
                    .and_then(|m| m.split('`').next());
                let field = match (path.as_str(), missing) {
                    (".", Some(m)) => m.to_string(),
                    (".", None) => "action".to_string(),
                    _ => path,
                };
                ApiError::bad(
                    &field,
                    format!(
                        "{field}: {} (an action is one of hold-stage with its stage, release, flashing-yellow, all-red, reset-fault, rollback)",
                        e.inner()
                    ),
                )
            })
        },
        |c, action, op, now| {
            let (entry, p) = c.command(now, &region, &intersection, op, action)?;
            let detail = serde_json::to_value(&entry).unwrap_or_default();
            Ok((vec![p], detail))
        },
    )
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

async fn page_html() -> Response {
    page("text/html; charset=utf-8", include_str!("page/index.html"))
}
async fn page_js() -> Response {
    page(
        "text/javascript; charset=utf-8",
        include_str!("page/console.js"),
    )
}
async fn page_css() -> Response {
    page("text/css; charset=utf-8", include_str!("page/console.css"))
}
