//! A module's stdout: its events and credit go to the router, its device accesses to the TEE
//! layer, its sealed-state messages to its storage and platform counters (`sealed.rs`), and
//! its replies to the one management request waiting for them.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use aex_proto::frame::{self, encode, MAX_FRAME_LEN};
use aex_proto::{forwarding, FromModule, ToModule};
use tokio::process::ChildStdout;
use tracing::{debug, instrument, warn};

use super::pipe::Pipe;
use super::Replies;
use crate::frames::FrameReader;
use crate::names::check_name;
use crate::queue;
use crate::sealed::{read_chunks, BlobStore, Persistent};
use crate::sync::lock;
use crate::to_router::ToRouter;

/// What the stdout reader of one module needs.
pub(super) struct Output {
    pub(super) name: String,
    pub(super) replies: Arc<Mutex<Replies>>,
    /// Where its events and device accesses go.
    pub(super) to_router: ToRouter,
    /// The module's own stdin queue, for device replies.
    pub(super) input: queue::Sender,
    /// Its sealed storage, for `Store` and `Counter`.
    pub(super) persistent: Arc<OnceLock<Arc<Persistent>>>,
    /// Its directory: a predecessor's (`Adopt`) is beside it, in the same namespace.
    pub(super) dir: PathBuf,
    /// Answers its own evidence requests (`evidence.rs`).
    pub(super) attester: super::evidence::Attester,
}

/// Hands the module's events and device accesses to the router (answering the accesses) and
/// replies to the waiting request.
#[instrument(skip_all, fields(module = %out.name))]
pub(super) async fn read_output(out: Output, mut reader: FrameReader<Pipe<ChildStdout>>) {
    let Output {
        replies,
        mut to_router,
        input,
        persistent,
        dir,
        attester,
        ..
    } = out;
    loop {
        // An event is routed where it lies in the read buffer (one copy, into the next hop's
        // frame); anything else is decoded.
        let next = reader
            .next_with(MAX_FRAME_LEN, |body| match forwarding::from_module(body) {
                Some(ev) => {
                    to_router.event(ev);
                    Ok(None)
                }
                None => frame::decode::<FromModule>(body).map(Some),
            })
            .await;
        let next = match next {
            Ok(Some(None)) => continue,
            Ok(Some(Some(msg))) => Ok(Some(msg)),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        match next {
            Ok(Some(FromModule::Event(ev))) => to_router.event(ev.view()),
            Ok(Some(FromModule::Credit(credit))) => to_router.credit(credit),
            Ok(Some(FromModule::Hello(_))) => warn!("module said hello twice; ignored"),
            Ok(Some(FromModule::Device { id, device, op })) => {
                let result = to_router.device(&device, op);
                // Never wait on the module's own full queue here: it may be blocked writing
                // to this reader. A reply that does not fit is dropped; the driver times out.
                if input
                    .try_send(encode(&ToModule::DeviceReply { id, result }))
                    .is_err()
                {
                    debug!(id, "device reply dropped: module input full or closed");
                    to_router.count_drop();
                }
            }
            // A chunk stored, or a counter advanced, is progress towards a waiting reply (a
            // persistent module commits before it answers); a failed store is not, so a
            // broken disk fails the request at its limit instead of stretching it.
            Ok(Some(FromModule::Store(chunk))) => {
                let version = chunk.version;
                let result = match on_sealed(&persistent, move |p| p.store(&chunk)).await {
                    Some(None) => {
                        lock(&replies).progressed();
                        continue;
                    }
                    Some(Some(result)) => result,
                    None => Err("this module is not persistent".into()),
                };
                if result.is_ok() {
                    lock(&replies).progressed();
                }
                answer_module(&input, &mut to_router, ToModule::Stored { version, result });
            }
            Ok(Some(FromModule::Counter { id, call, nonce })) => {
                let result = on_sealed(&persistent, move |p| p.counter(call, &nonce))
                    .await
                    .unwrap_or_else(|| Err("this module is not persistent".into()));
                if result.as_ref().is_ok_and(|v| v.advanced) {
                    lock(&replies).progressed();
                }
                answer_module(
                    &input,
                    &mut to_router,
                    ToModule::CounterAnswer { id, result },
                );
            }
            Ok(Some(FromModule::Evidence {
                id,
                key,
                challenge,
                mac,
            })) => {
                let answer = attester.answer(id, key, challenge, mac).await;
                answer_module(&input, &mut to_router, answer);
            }
            Ok(Some(FromModule::Adopt { predecessor })) => {
                tokio::spawn(hand_over_blobs(dir.clone(), predecessor, input.clone()));
            }
            Ok(Some(msg)) => {
                let mut replies = lock(&replies);
                match replies.waiting.take() {
                    Some(w) if w.expect.matches(&msg) => {
                        let _ = w.reply.send(msg);
                    }
                    waiting => {
                        replies.waiting = waiting;
                        warn!(
                            reply = kind_name(&msg),
                            "unsolicited reply from module; ignored"
                        );
                    }
                }
            }
            Ok(None) => {
                debug!("module output ended");
                break;
            }
            Err(e) => {
                warn!(error = %e, "bad frame from module");
                to_router.count_drop();
                if e.is_fatal() {
                    break;
                }
            }
        }
    }
    let mut replies = lock(&replies);
    replies.closed = true;
    replies.waiting = None;
}

/// Sends the module the stored blobs of `predecessor`, its namespace's module of that name
/// (`Adopt`), newest first, then `AdoptEnd`; none if the name is not valid or has none. It
/// waits for room in the module's queue (a blob may be 256 MiB), off the reader's task.
async fn hand_over_blobs(dir: PathBuf, predecessor: String, input: queue::Sender) {
    let blobs = match (check_name(&predecessor), dir.parent()) {
        (Ok(()), Some(namespace)) => BlobStore::new(&namespace.join(&predecessor)).blob_files(),
        _ => Vec::new(),
    };
    for (version, path) in blobs {
        match tokio::task::spawn_blocking(move || read_chunks(&path, version)).await {
            Ok(Ok(chunks)) => {
                for chunk in chunks {
                    if !input.send(encode(&ToModule::Adopted(chunk))).await {
                        return;
                    }
                }
            }
            Ok(Err(e)) => warn!(version, error = %e, "cannot read a predecessor's sealed blob"),
            Err(_) => {}
        }
    }
    let _ = input.send(encode(&ToModule::AdoptEnd)).await;
}

/// Runs a blocking operation on the module's sealed storage off the async threads; `None` if
/// the module has none.
async fn on_sealed<T: Send + 'static>(
    persistent: &Arc<OnceLock<Arc<Persistent>>>,
    op: impl FnOnce(&Persistent) -> T + Send + 'static,
) -> Option<T> {
    let p = persistent.get().cloned()?;
    tokio::task::spawn_blocking(move || op(&p)).await.ok()
}

/// Sends the platform's or the store's answer to the module without waiting on its queue
/// (it may be blocked writing to the reader that calls this); one that does not fit is
/// dropped and counted, and the module's commit times out and tries again.
fn answer_module(input: &queue::Sender, to_router: &mut ToRouter, msg: ToModule) {
    if input.try_send(encode(&msg)).is_err() {
        debug!("sealed-state answer dropped: module input full or closed");
        to_router.count_drop();
    }
}

/// A reply's variant name, for logs and errors (never its contents).
pub(super) fn kind_name(msg: &FromModule) -> &'static str {
    match msg {
        FromModule::Hello(_) => "Hello",
        FromModule::Attested { .. } => "Attested",
        FromModule::AttestRefused => "AttestRefused",
        FromModule::CommandReply(_) => "CommandReply",
        FromModule::CommandRejected { .. } => "CommandRejected",
        FromModule::Event(_) => "Event",
        FromModule::Stats(_) => "Stats",
        FromModule::Trace(_) => "Trace",
        FromModule::Device { .. } => "Device",
        FromModule::Credit(_) => "Credit",
        _ => "an unknown message",
    }
}
