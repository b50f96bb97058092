//! The dashboard's HTTP server: the page, its script and style, the latest snapshot, and a
//! stream of snapshots (server-sent events), each behind the checks of the module doc.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use super::snapshot::Snapshots;

/// Connections served at once (a page holds one stream and makes a few requests).
const MAX_CONNECTIONS: usize = 32;
/// How long a client has to send its request headers.
const HEADER_TIME: Duration = Duration::from_secs(5);

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");

/// How `aex dashboard` runs.
pub struct Options {
    /// The application: a descriptor, or a directory holding `aex.toml`.
    pub path: std::path::PathBuf,
    /// The deployer identity the application's sessions are signed with.
    pub identity: Arc<aex_deploy::Identity>,
    /// Where to listen.
    pub listen: SocketAddr,
    /// How often a snapshot is taken.
    pub every: Duration,
    /// The limit on each node wait.
    pub timeout: Duration,
}

/// What the server checks and serves.
struct Site {
    token: String,
    /// The `Host` values a request may carry.
    hosts: Vec<String>,
    latest: watch::Receiver<Arc<String>>,
}

/// Serves the dashboard until the process is interrupted; `ready` is told the page's URL once
/// the listener is bound.
pub fn serve(options: Options, ready: impl FnOnce(&str)) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(options.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", options.listen))?;
        let addr = listener.local_addr()?;
        let token = hex::encode(aex_crypto::random_bytes::<16>());
        let port = addr.port();
        let mut hosts = vec![addr.to_string()];
        if addr.ip().is_loopback() {
            hosts.extend([
                format!("localhost:{port}"),
                format!("127.0.0.1:{port}"),
                format!("[::1]:{port}"),
            ]);
        }
        let snapshots = Snapshots {
            path: options.path,
            identity: options.identity,
            timeout: options.timeout,
        };
        let (tx, latest) = watch::channel(Arc::new(snapshots.take()));
        let every = options.every;
        std::thread::Builder::new()
            .name("dashboard-snapshots".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                if tx.send(Arc::new(snapshots.take())).is_err() {
                    return;
                }
            })?;
        let site = Arc::new(Site {
            token: token.clone(),
            hosts,
            latest,
        });
        ready(&format!("http://{addr}/?token={token}"));
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                continue;
            };
            let site = site.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let site = site.clone();
                    async move { Ok::<_, Infallible>(answer(&site, &req)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIME)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                drop(slot);
            });
        }
    })
}

type Body = BoxBody<Bytes, Infallible>;

/// The answer to one request.
fn answer(site: &Site, req: &Request<Incoming>) -> Response<Body> {
    let host = req.headers().get(HOST).and_then(|h| h.to_str().ok());
    if !host.is_some_and(|h| site.hosts.iter().any(|allowed| allowed == h)) {
        return text(
            StatusCode::MISDIRECTED_REQUEST,
            "this server answers only for its own address\n",
        );
    }
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    let token = req
        .uri()
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("token="))
        .unwrap_or("");
    if !bool::from(token.as_bytes().ct_eq(site.token.as_bytes())) {
        return text(
            StatusCode::FORBIDDEN,
            "open the URL `aex dashboard` printed (it carries the token)\n",
        );
    }
    match req.uri().path() {
        "/" => typed(
            PAGE.replace("{{TOKEN}}", &site.token),
            "text/html; charset=utf-8",
        ),
        "/page.js" => typed(SCRIPT.to_string(), "text/javascript; charset=utf-8"),
        "/page.css" => typed(STYLE.to_string(), "text/css; charset=utf-8"),
        "/snapshot" => typed(site.latest.borrow().to_string(), "application/json"),
        "/events" => events(site.latest.clone()),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// The snapshots as server-sent events: the latest at once, then each new one.
fn events(mut latest: watch::Receiver<Arc<String>>) -> Response<Body> {
    let (mut tx, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(2);
    tokio::spawn(async move {
        loop {
            let json = latest.borrow_and_update().clone();
            let frame = Bytes::from(format!("data: {json}\n\n"));
            if tx.send(Frame::data(frame)).await.is_err() || latest.changed().await.is_err() {
                return;
            }
        }
    });
    let mut response = Response::new(body.boxed());
    headers(&mut response, "text/event-stream");
    response
}

fn typed(body: String, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    headers(&mut response, content_type);
    response
}

fn text(status: StatusCode, message: &'static str) -> Response<Body> {
    let mut response = typed(message.to_string(), "text/plain; charset=utf-8");
    *response.status_mut() = status;
    response
}

/// The headers every answer carries (and no CORS header).
fn headers(response: &mut Response<Body>, content_type: &'static str) {
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
}
