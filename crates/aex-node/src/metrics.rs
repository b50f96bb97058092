//! The node's Prometheus endpoint (`--metrics ADDR`, `metrics = "ADDR"` in `node.toml`):
//! `GET /metrics` in the Prometheus text format (version 0.0.4), encoded by the official
//! client crate (`prometheus-client`) and served over HTTP/1 by hyper.
//!
//! What it serves is what the node already knows, read on each scrape: routes with the events
//! each handed on and dropped, module input queues, module processes and their restarts, peer
//! links and their queues, refusals and open connections, and what each stakeholder (deployer
//! identity, by the first 8 bytes of its public key) takes of the node. Nothing a module says about itself
//! (its runtime's counters travel sealed to its deployer) and no key.
//!
//! Invariants:
//! * **no stakeholder's names.** The endpoint is the operator's, and several mutually
//!   distrusting deployers share the node: applications are labelled by their namespace id
//!   (`app`, already a hash of deployer key and application name) and modules by a pseudonym
//!   (`module`: the first 8 bytes, in hex, of SHA-256 over the namespace id and the module's
//!   name), which a deployer can compute for its own modules and nobody can invert for another's.
//! * **bounded cardinality.** Per-connection and per-module series are written for at most
//!   [`MAX_SERIES`] routes and modules each (in namespace order); the rest are left out and
//!   counted in `aex_metrics_series_omitted`, while the per-application totals, and the
//!   node-wide ones, always cover everything. A scrape's size is thus bounded whatever the
//!   node holds.
//! * **bounded before anything is read.** At most [`MAX_SCRAPERS`] connections at once (more
//!   are closed at once), request headers within [`HEADER_TIME`] and hyper's buffer limit, and
//!   a whole connection within [`CONNECTION_TIME`]: an unauthenticated listener, like the node's
//!   own, must not let anyone hold the node's memory or tasks.
//!
//! The endpoint has no authentication and no TLS: bind it to loopback (the example configs do)
//! or to a management network. What it reveals is traffic volume per namespace, which an
//! operator sees on the wire anyway.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use aex_proto::AppId;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tracing::{debug, warn};

use crate::shared::Shared;
use crate::sync::stopped;

/// Routes, and modules, given series of their own; the rest count only in the totals.
pub const MAX_SERIES: usize = 1000;
/// Scrapes served at once.
pub const MAX_SCRAPERS: usize = 8;
/// How long a client has to send its request headers.
pub const HEADER_TIME: Duration = Duration::from_secs(5);
/// How long one connection may last, requests and responses included.
pub const CONNECTION_TIME: Duration = Duration::from_secs(30);

/// The path that serves the metrics.
const PATH: &str = "/metrics";

/// Serves `GET /metrics` on `listener` until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(NodeCollector(shared)));
    let registry = Arc::new(registry);
    let slots = Arc::new(Semaphore::new(MAX_SCRAPERS));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, say: the next accept may succeed.
                    warn!(error = %e, "metrics endpoint: cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stopped(&mut shutdown) => return,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "metrics endpoint: too many scrapes at once; closed");
            continue;
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let registry = registry.clone();
                async move { Ok::<_, Infallible>(answer(&req, &registry)) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIME)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIME, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => debug!(%peer, error = %e, "metrics endpoint: connection failed"),
                Err(_) => debug!(%peer, "metrics endpoint: connection outlasted its time; closed"),
            }
            drop(slot);
        });
    }
}

/// The response to one request: the metrics, or why not.
fn answer(req: &Request<Incoming>, registry: &Registry) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, text: &str| {
        let mut response = Response::new(Full::new(Bytes::from(text.to_owned())));
        *response.status_mut() = status;
        response
    };
    if req.uri().path() != PATH {
        return reply(
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "only GET is served\n");
    }
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, registry) {
        warn!(error = %e, "metrics endpoint: cannot encode the metrics");
        return reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the metrics\n",
        );
    }
    let mut response = reply(StatusCode::OK, &text);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        ),
    );
    response
}

/// The pseudonym of module `name` of namespace `app` in the metrics (see the file's
/// invariants).
pub(crate) fn module_pseudonym(app: AppId, name: &str) -> String {
    let digest = aex_crypto::sha256(&[b"aex metrics module v1", &app.0, name.as_bytes()]);
    hex::encode(&digest[..8])
}

/// Reads the node's state on each scrape.
struct NodeCollector(Arc<Shared>);

impl std::fmt::Debug for NodeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCollector")
            .field("node", &self.0.name)
            .finish()
    }
}

/// One metric family being written: its name, help and kind, and its samples.
struct Family<'a, 'b> {
    encoder: &'a mut DescriptorEncoder<'b>,
}

impl Family<'_, '_> {
    /// Writes family `name` of counters, one sample per label set.
    fn counters<const N: usize>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = ([(&'static str, String); N], u64)>,
    ) -> std::fmt::Result {
        self.write(name, help, samples, ConstCounter::new)
    }

    /// Writes family `name` of gauges, one sample per label set.
    fn gauges<const N: usize>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = ([(&'static str, String); N], i64)>,
    ) -> std::fmt::Result {
        self.write(name, help, samples, ConstGauge::new)
    }

    /// Writes family `name` of the metrics `make` builds from each sample's value.
    fn write<const N: usize, V: Default, M: EncodeMetric>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = ([(&'static str, String); N], V)>,
        make: fn(V) -> M,
    ) -> std::fmt::Result {
        let kind = make(V::default()).metric_type();
        let mut metric = self.encoder.encode_descriptor(name, help, None, kind)?;
        for (labels, value) in samples {
            make(value).encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// What one deployer identity takes of the node.
#[derive(Default)]
struct Takes {
    modules: u64,
    running: u64,
    routes: u64,
    queued_bytes: u64,
    routed: u64,
    dropped: u64,
}

/// A count as a gauge value (saturating: no node holds 2^63 of anything).
fn gauge(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

impl Collector for NodeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let shared = &self.0;
        let router = &shared.router;
        let mut family = Family {
            encoder: &mut encoder,
        };
        family.gauges(
            "aex_node_info",
            "The node agent: its name, TEE kind and version (always 1)",
            [(
                [
                    ("node", shared.name.clone()),
                    ("tee", shared.backend.kind().name().to_string()),
                    ("version", env!("CARGO_PKG_VERSION").to_string()),
                ],
                1,
            )],
        )?;

        let routes = router.route_samples();
        let mut per_app: BTreeMap<AppId, (u64, u64)> = BTreeMap::new();
        for r in &routes {
            let app = per_app.entry(r.app).or_default();
            app.0 += r.routed;
            app.1 += r.dropped;
        }
        let shown = &routes[..routes.len().min(MAX_SERIES)];
        let conn_labels = |r: &crate::routes::RouteSample| {
            [
                ("app", r.app.to_string()),
                ("conn", r.conn.0.to_string()),
                ("dir", format!("{:?}", r.dir).to_lowercase()),
            ]
        };
        family.counters(
            "aex_connection_events_routed",
            "Events the node handed on along a route (to a module, a peer node or a deployer)",
            shown.iter().map(|r| (conn_labels(r), r.routed)),
        )?;
        family.counters(
            "aex_connection_events_dropped",
            "Events the node dropped on a route (module or peer gone, queue full, no window)",
            shown.iter().map(|r| (conn_labels(r), r.dropped)),
        )?;
        family.counters(
            "aex_app_events_routed",
            "Events handed on, summed over an application's routes",
            per_app
                .iter()
                .map(|(app, c)| ([("app", app.to_string())], c.0)),
        )?;
        family.counters(
            "aex_app_events_dropped",
            "Events dropped on an application's routes",
            per_app
                .iter()
                .map(|(app, c)| ([("app", app.to_string())], c.1)),
        )?;
        family.gauges(
            "aex_routes",
            "Routes installed",
            [([], gauge(routes.len()))],
        )?;
        family.counters(
            "aex_dropped",
            "Frames, events and credits the node could not decode or deliver, all namespaces",
            [([], router.dropped())],
        )?;

        let modules = router.all_modules();
        let running = modules.iter().filter(|m| m.running()).count();
        family.gauges(
            "aex_modules_loaded",
            "Modules loaded",
            [([], gauge(modules.len()))],
        )?;
        family.gauges(
            "aex_modules_running",
            "Modules whose process is alive",
            [([], gauge(running))],
        )?;
        let shown = &modules[..modules.len().min(MAX_SERIES)];
        let module_labels = |m: &crate::module::Module| {
            [
                ("app", m.app().to_string()),
                ("module", module_pseudonym(m.app(), m.name())),
            ]
        };
        family.gauges(
            "aex_module_running",
            "Whether a module's process is alive (1) or ended (0)",
            shown
                .iter()
                .map(|m| (module_labels(m), i64::from(m.running()))),
        )?;
        let queues: Vec<(usize, usize)> = shown.iter().map(|m| m.queued()).collect();
        family.gauges(
            "aex_module_queue_messages",
            "Messages (events, commands, ticks) queued for a module's input",
            shown
                .iter()
                .zip(&queues)
                .map(|(m, q)| (module_labels(m), gauge(q.0))),
        )?;
        family.gauges(
            "aex_module_queue_bytes",
            "Bytes queued for a module's input (frames and their per-frame cost)",
            shown
                .iter()
                .zip(&queues)
                .map(|(m, q)| (module_labels(m), gauge(q.1))),
        )?;
        family.counters(
            "aex_module_restarts",
            "Times the node restarted a persistent module's process on its own",
            shown
                .iter()
                .map(|m| (module_labels(m), u64::from(m.restarts()))),
        )?;

        let peers = router.peer_samples();
        let peer_labels = |p: &aex_proto::PeerStatus| {
            [
                ("peer", p.address.clone()),
                ("identity", p.identity.short()),
            ]
        };
        family.gauges(
            "aex_peer_connected",
            "Whether the link to a peer node is up",
            peers
                .iter()
                .map(|(p, _)| (peer_labels(p), i64::from(p.connected))),
        )?;
        family.counters(
            "aex_peer_events_forwarded",
            "Events forwarded to a peer node",
            peers.iter().map(|(p, _)| (peer_labels(p), p.forwarded)),
        )?;
        family.gauges(
            "aex_peer_queue_frames",
            "Frames queued for a peer node",
            peers
                .iter()
                .map(|(p, (frames, _))| (peer_labels(p), gauge(*frames))),
        )?;
        family.gauges(
            "aex_peer_queue_bytes",
            "Bytes queued for a peer node",
            peers
                .iter()
                .map(|(p, (_, bytes))| (peer_labels(p), gauge(*bytes))),
        )?;

        // What each stakeholder (deployer identity) takes of the node, over all its
        // applications: always complete, one series per admitted identity with something here.
        let mut takes: BTreeMap<String, Takes> = BTreeMap::new();
        for r in &routes {
            let t = takes.entry(r.owner.short()).or_default();
            t.routes += 1;
            t.routed += r.routed;
            t.dropped += r.dropped;
        }
        for m in &modules {
            let t = takes.entry(m.owner().short()).or_default();
            t.modules += 1;
            t.running += u64::from(m.running());
            t.queued_bytes += m.queued().1 as u64;
        }
        let stakeholder = |key: &String| [("stakeholder", key.clone())];
        let per = |f: fn(&Takes) -> u64| {
            takes
                .iter()
                .map(move |(k, t)| (stakeholder(k), f(t)))
                .collect::<Vec<_>>()
        };
        family.gauges(
            "aex_stakeholder_modules",
            "Modules a deployer identity has loaded on the node",
            per(|t| t.modules).into_iter().map(|(l, v)| (l, gauge(v))),
        )?;
        family.gauges(
            "aex_stakeholder_modules_running",
            "Of those, modules whose process is alive",
            per(|t| t.running).into_iter().map(|(l, v)| (l, gauge(v))),
        )?;
        family.gauges(
            "aex_stakeholder_routes",
            "Routes a deployer identity has installed on the node",
            per(|t| t.routes).into_iter().map(|(l, v)| (l, gauge(v))),
        )?;
        family.gauges(
            "aex_stakeholder_queue_bytes",
            "Bytes queued for a deployer identity's modules",
            per(|t| t.queued_bytes)
                .into_iter()
                .map(|(l, v)| (l, gauge(v))),
        )?;
        family.counters(
            "aex_stakeholder_events_routed",
            "Events the node handed on along a deployer identity's routes",
            per(|t| t.routed),
        )?;
        family.counters(
            "aex_stakeholder_events_dropped",
            "Events dropped on a deployer identity's routes",
            per(|t| t.dropped),
        )?;

        family.counters(
            "aex_refused",
            "Deployer sessions and requests, and peer links, the node refused",
            [([], shared.refused())],
        )?;
        family.gauges(
            "aex_connections_open",
            "Connections open to the node's listener (deployers and peers)",
            [([], gauge(shared.connections.open()))],
        )?;
        family.gauges(
            "aex_metrics_series_omitted",
            "Routes and modules beyond the per-series limit, counted only in the totals",
            [
                (
                    [("family", "connection".to_string())],
                    gauge(routes.len().saturating_sub(MAX_SERIES)),
                ),
                (
                    [("family", "module".to_string())],
                    gauge(modules.len().saturating_sub(MAX_SERIES)),
                ),
            ],
        )?;
        Ok(())
    }
}
