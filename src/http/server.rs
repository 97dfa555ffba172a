//! HTTP: `/metrics`, `/healthz`, `/api/v1/status` and a status page at `/`.
//! Every handler reads the latest snapshot; none queries a database.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::in_force::InForce;
use super::metrics::{self, RenderCache};
use super::security::{WebConfig, WebSecurity};
use super::{history, page};
use crate::gate::{self, GateError, GateSpec, Tracked};
use crate::model::truncate;

/// A client gets this long to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

type Body = Full<Bytes>;

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    respond(status, "text/plain; charset=utf-8", body)
}

fn json_error(status: StatusCode, param: Option<&str>, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": message, "param": param });
    respond(status, "application/json", body.to_string())
}

fn gate_response(spec: &GateSpec, tracked: &Tracked, always_200: bool) -> Response<Body> {
    let now = (std::time::Instant::now(), std::time::SystemTime::now());
    let verdict = gate::evaluate(spec, &tracked.snapshot, &tracked.tracks, now.0, now.1);
    let status = if verdict.pass || always_200 { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    // Compact: a gate is asked often, by programs (`jq` makes it readable).
    match serde_json::to_vec(&verdict) {
        Ok(json) => respond(status, "application/json", json),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, None, &format!("cannot encode verdict: {e}")),
    }
}

/// `always_200=true`: answer 200 whatever the verdict (read `pass` in the
/// body) — for clients such as Argo Rollouts' web provider that treat any
/// other status as an error rather than a result.
fn take_always_200(query: &str) -> Result<(bool, String), GateError> {
    let mut always = false;
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key == "always_200" {
            always = match value.as_ref() {
                "true" | "1" => true,
                "false" | "0" => false,
                other => {
                    return Err(GateError {
                        param: "always_200".into(),
                        message: format!("{} is not true or false", crate::model::quoted(other)),
                    })
                }
            };
        } else {
            rest.append_pair(&key, &value);
        }
    }
    Ok((always, rest.finish()))
}

fn handle_gate(path: &str, query: Option<&str>, tracked: &Tracked, gates: &InForce) -> Response<Body> {
    let (always_200, query) = match take_always_200(query.unwrap_or("")) {
        Ok(split) => split,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, Some(&e.param), &e.to_string()),
    };
    match path.strip_prefix("/gate").unwrap_or("") {
        "" | "/" => match GateSpec::from_query(&query, gates.default_max_data_age) {
            Ok(spec) => gate_response(&spec, tracked, always_200),
            Err(e) => json_error(StatusCode::BAD_REQUEST, Some(&e.param), &e.to_string()),
        },
        name => {
            let name = name.trim_start_matches('/');
            match gates.named.get(name) {
                None => {
                    let known: Vec<&str> = gates.named.keys().map(String::as_str).collect();
                    let message = format!("no gate named {:?}; configured: {}", truncate(name, 64), known.join(", "));
                    json_error(StatusCode::NOT_FOUND, None, &message)
                }
                Some(_) if !query.is_empty() => json_error(
                    StatusCode::BAD_REQUEST,
                    None,
                    "a named gate takes no parameters but always_200; use /gate?… for an ad-hoc one",
                ),
                Some(spec) => gate_response(spec, tracked, always_200),
            }
        }
    }
}

/// What a request is answered from: the latest snapshot with the gates'
/// memory, the config in force, and the `/metrics` render cache.
#[derive(Clone)]
pub struct Served {
    pub tracked: Arc<Tracked>,
    pub in_force: Arc<InForce>,
    pub cache: Arc<RenderCache>,
    /// Where `/metrics` is served (`--web.telemetry-path`).
    pub telemetry_path: Arc<str>,
}

/// Route one request. `gzip`: the client's `Accept-Encoding` takes gzip
/// (only `/metrics` uses it, as Prometheus' client libraries do).
pub fn handle(method: &Method, path: &str, query: Option<&str>, gzip: bool, served: &Served) -> Response<Body> {
    let (snapshot, gates) = (&*served.tracked.snapshot, &*served.in_force);
    if method != Method::GET && method != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, format!("method {method} not allowed; use GET\n"));
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match path {
        p if p == &*served.telemetry_path => {
            let rendered = served.cache.get(&served.tracked, &served.in_force);
            let mut response = match gzip {
                true => respond(StatusCode::OK, metrics::CONTENT_TYPE, rendered.gzipped()),
                false => respond(StatusCode::OK, metrics::CONTENT_TYPE, rendered.text.clone()),
            };
            let headers = response.headers_mut();
            headers.insert(hyper::header::VARY, HeaderValue::from_static("Accept-Encoding"));
            if gzip {
                headers.insert(hyper::header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            response
        }
        p if p == "/gate" || p.starts_with("/gate/") => handle_gate(p, query, &served.tracked, gates),
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/api/v1/status" => match serde_json::to_vec_pretty(snapshot) {
            Ok(json) => respond(StatusCode::OK, "application/json", json),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode status: {e}\n")),
        },
        "/api/v1/events" => {
            let now = crate::model::to_unix(std::time::SystemTime::now());
            match super::failover::events(snapshot, query.unwrap_or(""), now) {
                Ok(json) => respond(StatusCode::OK, "application/json", json),
                Err((status, param, message)) => json_error(status, param, &message),
            }
        }
        "/promote" => match super::failover::promote(snapshot, query.unwrap_or(""), std::time::Instant::now()) {
            Ok((status, json)) => respond(status, "application/json", json),
            Err((status, param, message)) => json_error(status, param, &message),
        },
        "/api/v1/history" => {
            let (now, wall) = (std::time::Instant::now(), std::time::SystemTime::now());
            match serde_json::to_vec(&history::build(&served.tracked, now, wall)) {
                Ok(json) => respond(StatusCode::OK, "application/json", json),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode history: {e}\n")),
            }
        }
        "/" | "/ui/live" => {
            let (now, wall) = (std::time::Instant::now(), std::time::SystemTime::now());
            let html = match path {
                "/" => page::full(&served.tracked, gates, &served.telemetry_path, now, wall),
                _ => page::live(&served.tracked, gates, now, wall),
            };
            let mut response = respond(StatusCode::OK, "text/html; charset=utf-8", html);
            response.headers_mut().insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        other => text(
            StatusCode::NOT_FOUND,
            format!(
                "no such endpoint {other:?}; try /, /metrics, /healthz, /gate, /promote, /api/v1/status, /api/v1/events or /api/v1/history\n",
                other = truncate(other, 100)
            ),
        ),
    }
}

/// Serve until `shutdown` resolves. Then idle connections close at once and
/// requests in flight get up to `DRAIN` to finish. With a web config, TLS
/// and basic auth apply as it says (re-read when it changes).
pub async fn serve(
    listener: TcpListener,
    snapshots: watch::Receiver<Arc<Tracked>>,
    gates: watch::Receiver<Arc<InForce>>,
    security: Option<Arc<WebSecurity>>,
    telemetry_path: Arc<str>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let cache = Arc::new(RenderCache::default());
    let ahead = tokio::spawn(metrics::render_ahead(cache.clone(), snapshots.clone(), gates.clone()));
    let _ahead = AbortOnDrop(ahead);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // TLS settings apply per connection, users per request: a reloaded
        // file takes effect on kept-alive connections too.
        let web = security.as_ref().map(|s| s.current());
        let service = {
            let (snapshots, gates, security, cache, telemetry_path) =
                (snapshots.clone(), gates.clone(), security.clone(), cache.clone(), telemetry_path.clone());
            service_fn(move |request: Request<Incoming>| {
                let served = Served {
                    tracked: snapshots.borrow().clone(),
                    in_force: gates.borrow().clone(),
                    cache: cache.clone(),
                    telemetry_path: telemetry_path.clone(),
                };
                let web = security.as_ref().map(|s| s.current());
                async move { Ok::<_, Infallible>(authorized_handle(request, &served, web).await) }
            })
        };
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let builder = {
                let mut b = http1::Builder::new();
                b.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).max_buf_size(64 * 1024);
                b
            };
            let result = match web.as_ref().and_then(|w| w.tls.clone()) {
                Some(acceptor) => match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => watcher.watch(builder.serve_connection(TokioIo::new(tls), service)).await,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                },
                None => watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await,
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in flight after {} s; stopping anyway", DRAIN.as_secs());
    }
    Ok(())
}

/// Stops a task when the function that started it returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `/healthz` stays open; everything else needs the web config's basic auth
/// when it lists users. bcrypt is slow on purpose: it runs off the runtime.
async fn authorized_handle(request: Request<Incoming>, served: &Served, web: Option<Arc<WebConfig>>) -> Response<Body> {
    let uri = request.uri();
    if let Some(web) = web.filter(|w| !w.users.is_empty() && uri.path() != "/healthz") {
        let header = request.headers().get(hyper::header::AUTHORIZATION).map(|h| h.as_bytes().to_vec());
        let allowed = tokio::task::spawn_blocking(move || web.authorized(header.as_deref())).await.unwrap_or(false);
        if !allowed {
            let mut response = text(StatusCode::UNAUTHORIZED, "authentication required\n");
            response
                .headers_mut()
                .insert(hyper::header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"replag\""));
            return response;
        }
    }
    // A gate, the status API or page over many links takes milliseconds
    // (/metrics decides for itself: it is usually rendered already).
    let path = uri.path();
    let gzip = metrics::accepts_gzip(request.headers().get(hyper::header::ACCEPT_ENCODING).map(|h| h.as_bytes()));
    let cheap = path == &*served.telemetry_path || path == "/healthz";
    if !cheap && served.tracked.snapshot.links.len() >= crate::offload::HEAVY_LINKS {
        crate::offload::heavy(|| handle(request.method(), path, uri.query(), gzip, served))
    } else {
        handle(request.method(), path, uri.query(), gzip, served)
    }
}

/// How long requests in flight may take to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(5);

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Snapshot;
    use std::time::SystemTime;

    fn body_len(response: Response<Body>) -> usize {
        use http_body_util::BodyExt;
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(response.into_body().collect()).unwrap().to_bytes().len()
    }

    #[test]
    fn routes_and_errors() {
        let mut g = InForce { default_max_data_age: Duration::from_secs(10), ..Default::default() };
        g.named.insert("deploy".into(), GateSpec::from_query("max_lag=1s", Duration::from_secs(10)).unwrap());
        let s = Served {
            tracked: Arc::new(Tracked::new(Arc::new(Snapshot::empty(SystemTime::now())))),
            in_force: Arc::new(g),
            cache: Default::default(),
            telemetry_path: "/metrics".into(),
        };
        let get = |path: &str, query: Option<&str>| handle(&Method::GET, path, query, false, &s);
        assert_eq!(get("/ui/live", None).status(), StatusCode::OK);
        assert_eq!(get("/api/v1/history", None).status(), StatusCode::OK);
        let moved = Served { telemetry_path: "/prometheus/metrics".into(), ..s.clone() };
        assert_eq!(handle(&Method::GET, "/prometheus/metrics", None, false, &moved).status(), StatusCode::OK);
        assert_eq!(handle(&Method::GET, "/metrics", None, false, &moved).status(), StatusCode::NOT_FOUND);
        assert_eq!(get("/healthz", None).status(), StatusCode::OK);
        let m = get("/metrics", None);
        assert_eq!(m.status(), StatusCode::OK);
        assert_eq!(m.headers()[CONTENT_TYPE], metrics::CONTENT_TYPE);
        assert_eq!(get("/nope", None).status(), StatusCode::NOT_FOUND);
        let post = handle(&Method::POST, "/metrics", None, false, &s);
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[ALLOW], "GET, HEAD");
        assert_eq!(get("/api/v1/status", None).status(), StatusCode::OK);
        assert_eq!(get("/", None).status(), StatusCode::OK);
        assert_eq!(get("/gate", Some("max_lag=banana")).status(), StatusCode::BAD_REQUEST);
        assert_eq!(get("/gate/nope", None).status(), StatusCode::NOT_FOUND);
        // User input is echoed in bounded pieces: a 10 kB value or name is not sent back whole.
        for query in [format!("max_lag={}", "9".repeat(10_000)), format!("{}=1", "k".repeat(10_000))] {
            let response = get("/gate", Some(&query));
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
            let body = body_len(response);
            assert!(body < 1024, "{body} bytes echoed for a 10 kB parameter");
        }
        assert_eq!(get("/gate/deploy", Some("for=1s")).status(), StatusCode::BAD_REQUEST);
        // No data at all: fail closed.
        assert_eq!(get("/gate/deploy", None).status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(get("/gate", Some("max_lag=1s")).status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(get("/gate/deploy", Some("always_200=true")).status(), StatusCode::OK);
        assert_eq!(get("/gate", Some("max_lag=1s&always_200=1")).status(), StatusCode::OK);
        assert_eq!(get("/gate", Some("always_200=maybe")).status(), StatusCode::BAD_REQUEST);
    }
}
