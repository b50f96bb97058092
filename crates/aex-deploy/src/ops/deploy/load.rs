//! Loading a module binary onto its node: from the binary the node already holds for this
//! deployer if it does (`LoadStored`), else the upload, in pipelined chunks; then the check that
//! the node measured the very bytes the deployer built.

use aex_proto::{NodeErrorKind, NodeRequest, NodeResponse};

use crate::app::{unexpected, App};
use crate::build::Built;
use crate::client::ClientError;
use crate::error::{AttestError, Error, Result};

/// The size of one upload chunk.
const CHUNK: usize = 256 * 1024;

/// Loads `built` as `module` (a node-side instance name, see
/// [`ModuleRecord::slot`](crate::state::ModuleRecord::slot)) on `node` and checks the node
/// measured the bytes that were built; an instance of that name is unloaded first if `exists`.
///
/// A plain module is first asked for from the binary the node holds for this deployer (one
/// small request: a thousand modules of one binary are uploaded once per node); a node that
/// holds none answers `NotStored`, and the binary is uploaded (pipelined chunks). A driver is
/// always uploaded (its devices are granted with `LoadDriver`).
pub(super) fn load(
    app: &mut App,
    module: &str,
    node: &str,
    built: &Built,
    exists: bool,
) -> Result<()> {
    let action = format!("load module `{module}`");
    if exists {
        app.request(
            node,
            &action,
            NodeRequest::Unload {
                module: module.into(),
            },
        )?;
    }
    if built.devices.is_empty() {
        let stored = app.client(node)?.request(NodeRequest::LoadStored {
            module: module.into(),
            measurement: built.measurement.0,
        });
        match stored {
            Err(ClientError::Node(e)) if e.kind == NodeErrorKind::NotStored => {}
            answer => return loaded(app, module, node, built, answer),
        }
    }
    let client = app.client(node)?;
    let result = (|| {
        let mut ids = vec![client.send_request(NodeRequest::LoadBegin {
            module: module.into(),
            size: built.bytes.len() as u64,
        })?];
        for chunk in built.bytes.chunks(CHUNK) {
            ids.push(client.send_request(NodeRequest::LoadChunk {
                module: module.into(),
                data: chunk.to_vec(),
            })?);
        }
        // A driver's devices are claimed as it loads, before it runs: the grant is part of
        // what the node measures.
        let end = if built.devices.is_empty() {
            NodeRequest::LoadEnd {
                module: module.into(),
            }
        } else {
            NodeRequest::LoadDriver {
                module: module.into(),
                devices: built.devices.clone(),
            }
        };
        ids.push(client.send_request(end)?);
        client.flush()?;
        let mut last = None;
        for id in ids {
            last = Some(client.response(id)?);
        }
        Ok(last)
    })();
    let last = result.map_err(|source| Error::Node {
        node: node.into(),
        action: action.clone(),
        source,
    })?;
    check(app, module, node, built, last, &action)
}

/// Checks the node's `answer` to a `LoadStored` of `module` (see [`load`]).
pub(super) fn loaded(
    app: &mut App,
    module: &str,
    node: &str,
    built: &Built,
    answer: std::result::Result<NodeResponse, ClientError>,
) -> Result<()> {
    let action = format!("load module `{module}`");
    let answer = answer.map_err(|source| Error::Node {
        node: node.into(),
        action: action.clone(),
        source,
    })?;
    check(app, module, node, built, Some(answer), &action)
}

/// Checks the node's answer to the load: the measurement it took is the one built.
fn check(
    app: &mut App,
    module: &str,
    node: &str,
    built: &Built,
    last: Option<NodeResponse>,
    action: &str,
) -> Result<()> {
    match last {
        Some(NodeResponse::Loaded { measurement }) if measurement == built.measurement.0 => Ok(()),
        Some(NodeResponse::Loaded { measurement }) => Err(Error::Attestation {
            module: module.into(),
            node: node.into(),
            source: AttestError::LoadMeasurement {
                expected: built.measurement.to_hex(),
                got: hex::encode(measurement),
            },
        }),
        _ => Err(unexpected(node, action, app)),
    }
}
