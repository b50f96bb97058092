//! The attacker in the node's position lies about a module, to make the owner's next
//! deployment replace it and start the new instance from its default state: its status reports
//! the running instance stopped. The deployer must not give the state up on that word: it asks
//! the instance itself, with a sealed `Retire`, and the state moves to the new instance intact.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aex_proto::{FromNode, NodeResponse};

use aex_testkit::hoard::Hoard;
use aex_testkit::proxy::{Link, Out, Tamper};
use aex_testkit::status::StatusExt;

/// Reports every module stopped in the node's status answers, while armed.
#[derive(Default)]
struct CallsItGone {
    armed: AtomicBool,
}

impl Tamper for CallsItGone {
    fn downstream(&self, _link: Link, mut msg: FromNode) -> Vec<Out> {
        if let FromNode::Response {
            result: Ok(NodeResponse::Status(status)),
            ..
        } = &mut msg
        {
            if self.armed.load(Ordering::SeqCst) {
                for m in &mut status.modules {
                    m.running = false;
                    m.exit = Some("signal: 9 (SIGKILL)".into());
                }
            }
        }
        vec![Out::ToClient(msg)]
    }
}

#[test]
fn a_status_that_calls_a_running_module_gone_costs_no_state() {
    let liar = Arc::new(CallsItGone::default());
    let hoard = Hoard::start(Some(liar.clone()));
    hoard.fill(3 << 20, 5);
    hoard.feed("c0ffee");
    let summary = hoard.summary();
    let len = summary["len"].as_u64().unwrap();

    liar.armed.store(true, Ordering::SeqCst);
    let deploy = hoard.app.deploy().ok();
    liar.armed.store(false, Ordering::SeqCst);
    assert_eq!(hoard.summary(), summary, "the state moved intact");
    assert_eq!(hoard.added(), 1);
    deploy.stderr_has(&[
        "ask the recorded instance for its state (its node reports it gone)",
        &format!(
            "took over the state ({} bytes) of an instance its node had reported gone",
            len + 8
        ),
    ]);
    hoard.app.status().assert_healthy();
    hoard.feed("01");
    assert_eq!(hoard.added(), 2);
}
