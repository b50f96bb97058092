//! Where modules run, checked from the descriptor alone (so before anything is built or
//! started): a module on a `native` node (no TEE, no attestation) must say it accepts that
//! (`allow_insecure = true`), and each connection's algorithm must be one that the TEE of both
//! its ends' nodes offers.

use aex_tee::TeeKind;

use super::Checker;
use crate::descriptor::error::DescriptorError;
use crate::descriptor::field::Field;
use crate::descriptor::model::{self, ConnectionSpec, ModuleSpec, NodeSpec};

impl Checker<'_> {
    /// Checks every module's node against the module, in file order.
    pub(super) fn insecure(
        &self,
        nodes: &[NodeSpec],
        modules: &[ModuleSpec],
    ) -> Result<(), DescriptorError> {
        for (i, module) in modules.iter().enumerate() {
            let native = nodes
                .iter()
                .any(|n| n.name == module.node && n.tee == TeeKind::Native);
            if native && !module.allow_insecure {
                let message = format!(
                    "module `{}` is placed on node `{}`, whose TEE kind is `native`: no TEE and \
                     no attestation, which is refused unless the module allows it",
                    module.name, module.node
                );
                let help = format!(
                    "to run `{}` without a TEE (for development only: nothing protects it), add \
                     `allow_insecure = true` to its `[[module]]` entry; otherwise place it on a \
                     node with a TEE (sgx, trustzone, sancus)",
                    module.name
                );
                return Err(self.error(Field::Module(i, "node"), message, Some(help)));
            }
        }
        Ok(())
    }

    /// Checks that the TEE of the node of each end of each connection offers its algorithm.
    pub(super) fn algorithms(
        &self,
        nodes: &[NodeSpec],
        modules: &[ModuleSpec],
        connections: &[ConnectionSpec],
    ) -> Result<(), DescriptorError> {
        for (i, c) in connections.iter().enumerate() {
            let from = match &c.from {
                model::From::Port(p) => Some(&p.module),
                model::From::Deployer => None,
            };
            for end in from.into_iter().chain([&c.to.module]) {
                let node = modules
                    .iter()
                    .find(|m| &m.name == end)
                    .and_then(|m| nodes.iter().find(|n| n.name == m.node));
                let Some(node) = node.filter(|n| !n.tee.offers(c.algorithm)) else {
                    continue;
                };
                let offered: Vec<&str> = node.tee.algorithms().iter().map(|a| a.name()).collect();
                let message = format!(
                    "connection `{}` uses {}, but module `{end}` runs on node `{}` ({}), which \
                     offers only {}",
                    c.name,
                    c.algorithm.name(),
                    node.name,
                    node.tee.name(),
                    offered.join(", ")
                );
                let help = format!(
                    "set `algorithm = \"{}\"` on connection `{}`, or move module `{end}` to a \
                     node that offers {}",
                    offered.first().copied().unwrap_or_default(),
                    c.name,
                    c.algorithm.name()
                );
                return Err(self.error(Field::Connection(i, "algorithm"), message, Some(help)));
            }
        }
        Ok(())
    }
}
