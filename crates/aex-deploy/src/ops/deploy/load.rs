//! Loading a module binary onto its node: the upload, in pipelined chunks, and the check that
//! the node measured the very bytes the deployer built.

use aex_proto::{NodeRequest, NodeResponse};

use crate::app::{unexpected, App};
use crate::build::Built;
use crate::error::{AttestError, Error, Result};

/// The size of one upload chunk.
const CHUNK: usize = 256 * 1024;

/// Uploads `built` as `module` (a node-side instance name, see
/// [`ModuleRecord::slot`](crate::state::ModuleRecord::slot)) to `node` (pipelined chunks) and
/// checks the node measured the bytes that were sent; an instance of that name is unloaded
/// first if `exists`.
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
        _ => Err(unexpected(node, &action, app)),
    }
}
