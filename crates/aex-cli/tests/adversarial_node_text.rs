//! The attacker in the node's position answers with text meant for the owner's terminal:
//! escape sequences that clear the screen, set the window title, recolour or overwrite lines,
//! and a right-to-left override. `aex` prints node text (errors, status) only escaped: the
//! terminal receives no control character it did not write itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aex_proto::{FromNode, NodeError, NodeErrorKind, NodeResponse};

use aex_testkit::cluster::{Cluster, Options};
use aex_testkit::proxy::{Link, Out, Tamper};

/// Clear the screen, set the title (OSC ... BEL), a C1 CSI, a carriage return over the line,
/// a right-to-left override.
const HOSTILE: &str = "\x1b[2J\x1b]0;owned\x07\u{9b}31m\rAll good \u{202e}gnp.exe";

/// Answers every request of the deployer's sessions with the hostile text, while armed.
#[derive(Default)]
struct Hostile {
    armed: AtomicBool,
}

impl Tamper for Hostile {
    fn downstream(&self, link: Link, msg: FromNode) -> Vec<Out> {
        match msg {
            FromNode::Response { id, result } if link == Link::Deployer => {
                let result = match result {
                    Ok(NodeResponse::CommandReply(_) | NodeResponse::Status(_))
                        if self.armed.load(Ordering::SeqCst) =>
                    {
                        Err(NodeError {
                            kind: NodeErrorKind::Refused,
                            message: HOSTILE.into(),
                        })
                    }
                    other => other,
                };
                vec![Out::ToClient(FromNode::Response { id, result })]
            }
            msg => vec![Out::ToClient(msg)],
        }
    }
}

/// What a terminal would act on rather than show.
fn controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| (c.is_control() && *c != '\n') || *c == '\u{202e}')
        .collect()
}

#[test]
fn node_text_reaches_the_terminal_escaped() {
    let hostile = Arc::new(Hostile::default());
    let cluster = Cluster::start(Options {
        tamper: Some(hostile.clone()),
        ..Options::default()
    });
    cluster.deploy_ok();
    hostile.armed.store(true, Ordering::SeqCst);

    let call = cluster.app.aex(&["call", "pong", "count"]).code(1);
    let status = cluster.app.aex(&["status"]).ok();
    for (what, out) in [
        ("call: stderr", &call.stderr),
        ("status: stdout", &status.stdout),
        ("status: stderr", &status.stderr),
    ] {
        assert_eq!(controls(out), Vec::<char>::new(), "{what}:\n{out}");
    }
    // Shown, as escapes, where it belongs.
    call.stderr_has(&[
        "node `node2` failed to call entry point `count`",
        "\\u{1b}[2J\\u{1b}]0;owned\\u{7}\\u{9b}31m\\u{d}All good \\u{202e}gnp.exe",
    ]);
    status.stderr_has(&["node `node2` did not answer", "\\u{1b}[2J"]);
}
