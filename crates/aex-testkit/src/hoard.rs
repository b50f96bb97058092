//! An application of the test kit's `hoard` module (a state of any size) on one test-started
//! node, optionally behind an attacking proxy: for the state-transfer tests.

use std::sync::Arc;

use serde_json::Value;

use crate::cluster::AppDir;
use crate::descriptor;
use crate::node::NodeProcess;
use crate::proxy::{Insider, Proxy, Tamper};
use crate::status::StatusExt;

/// `hoard` on `node1`, deployed, with the direct connection `feed` to its input.
pub struct Hoard {
    // Fields drop in order: the node first (it lives in the app directory), the app last.
    /// The node running hoard.
    pub node: NodeProcess,
    _proxy: Option<Proxy>,
    /// The application directory.
    pub app: AppDir,
}

impl Hoard {
    /// Starts the node (behind a proxy playing `tamper`, if any, as the node's compromised
    /// agent: the descriptor then gives the proxy's address) and deploys.
    pub fn start(tamper: Option<Arc<dyn Tamper>>) -> Hoard {
        Self::start_built("hoard", tamper)
    }

    /// [`Hoard::start`] with the persistent build of the same module (`vault`), no proxy.
    pub fn start_persistent() -> Hoard {
        Self::start_built("vault", None)
    }

    fn start_built(krate: &str, tamper: Option<Arc<dyn Tamper>>) -> Hoard {
        let app = AppDir::new();
        let node = NodeProcess::start("node1", app.path().join("node1"));
        let proxy = tamper.map(|t| {
            let deployer = crate::identity::deployer().identity.signing();
            Proxy::inside(node.addr, Insider::of(&node.data_dir, &[], deployer), t)
        });
        let addr = proxy.as_ref().map_or(node.addr, Proxy::addr);
        app.write_descriptor(&descriptor::hoard_of(
            krate,
            addr,
            &node.platform_pub_file(),
            &node.identity_pub_file(),
        ));
        app.deploy().ok();
        app.status().assert_healthy();
        Hoard {
            node,
            _proxy: proxy,
            app,
        }
    }

    /// Replaces hoard's state with `len` bytes made from `seed`; its summary.
    pub fn fill(&self, len: u64, seed: u64) -> Value {
        let arg = format!("{{\"len\":{len},\"seed\":{seed}}}");
        self.app.call("hoard", "fill", Some(&arg))
    }

    /// Hoard's state: `{"len": bytes, "fnv": digest}`.
    pub fn summary(&self) -> Value {
        self.app.call("hoard", "summary", None)
    }

    /// Events hoard (and the instances it took over from) accepted on `feed`.
    pub fn added(&self) -> u64 {
        let n = self.app.call("hoard", "added", None);
        n.as_u64().unwrap_or_else(|| panic!("`added` answered {n}"))
    }

    /// Sends `hex` bytes on `feed` (`aex output`), which must be accepted.
    pub fn feed(&self, hex: &str) {
        self.app
            .aex(&["output", "feed", "--hex", hex])
            .ok()
            .stderr_has(&["the module accepted it"]);
    }
}
