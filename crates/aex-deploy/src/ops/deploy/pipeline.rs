//! Sending many requests to the nodes at once: every request goes out before any answer is
//! read, so a deployment waits for the slowest node once per batch rather than once per
//! request.

use aex_proto::{NodeRequest, NodeResponse};

use crate::app::App;
use crate::client::ClientError;
use crate::error::{Error, Result};

/// Sends every request to its node without waiting for answers in between (all nodes at
/// once), then collects the answers; returns them in the order of `requests`.
pub(super) fn pipeline(
    app: &mut App,
    requests: Vec<(String, String, NodeRequest)>,
) -> Result<Vec<NodeResponse>> {
    let mut ids: Vec<(String, String, u64)> = Vec::with_capacity(requests.len());
    let mut nodes: Vec<String> = vec![];
    for (node, action, body) in requests {
        let id = app
            .client(&node)?
            .send_request(body)
            .map_err(|source| node_error(app, &node, &action, source))?;
        if !nodes.contains(&node) {
            nodes.push(node.clone());
        }
        ids.push((node, action, id));
    }
    for node in &nodes {
        app.client(node)?
            .flush()
            .map_err(|source| node_error(app, node, "send requests", source))?;
    }
    let mut answers = Vec::with_capacity(ids.len());
    for (node, action, id) in ids {
        let answer = app
            .client(&node)?
            .response(id)
            .map_err(|source| node_error(app, &node, &action, source))?;
        answers.push(answer);
    }
    Ok(answers)
}

/// The deployer error for a failed request; a broken session is dropped.
fn node_error(app: &mut App, node: &str, action: &str, source: ClientError) -> Error {
    if matches!(source, ClientError::Io { .. } | ClientError::Closed { .. }) {
        app.disconnect(node);
    }
    Error::Node {
        node: node.into(),
        action: action.into(),
        source,
    }
}
