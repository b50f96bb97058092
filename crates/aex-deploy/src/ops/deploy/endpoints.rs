//! A connection's ends resolved against the interfaces the built binaries declare, once: which
//! module each end is, and the part its port plays there (an output, input, request or
//! handler). Checking the descriptor, planning, keying and routing all work from the resolved
//! [`Link`]s, so they cannot disagree about what a port is.
//!
//! A port's part depends on the side it is on: the receiving end is an input, else a handler;
//! the sending end an output, else a request. A connection carries events (output → input) or
//! requests (request → handler), never a mix. How a connection record names its sender
//! ([`from_string`]) is here too, for the steps that compare records with the descriptor.

use std::collections::BTreeMap;

use aex_proto::{Interface, Role};

use crate::build::Built;
use crate::descriptor::{ConnectionSpec, Descriptor, Field, From, PortRef};
use crate::error::Result;

/// What a connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Events, from an output to an input.
    Event,
    /// Requests, from a request to a handler, and their replies back.
    Request,
}

/// One end of a connection: a module and the part its port plays on the connection (what
/// `SetKey` tells the module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct End {
    /// The module.
    pub module: String,
    /// Its port, as an output, input, request or handler.
    pub role: Role,
}

/// A connection of the descriptor with its ends resolved.
#[derive(Debug, Clone)]
pub(super) struct Link {
    /// The connection as the descriptor writes it.
    pub spec: ConnectionSpec,
    /// The sending end: `None` for a direct connection, where the deployer sends.
    pub from: Option<End>,
    /// The receiving end.
    pub to: End,
}

impl Link {
    /// Resolves connection `index` of `desc` against the interfaces in `built`. A port its
    /// module does not declare on that side, or ends of different kinds, are errors located
    /// at the connection's `from` or `to`.
    pub(super) fn resolve(
        desc: &Descriptor,
        index: usize,
        built: &BTreeMap<String, Built>,
    ) -> Result<Link> {
        let spec = &desc.connections[index];
        let to_if = &built[&spec.to.module].interface;
        let Some(to) = role(to_if, Side::To, &spec.to.port) else {
            let valid = ports(to_if, Side::To);
            let message = format!(
                "module `{}` has no input or handler `{}`",
                spec.to.module, spec.to.port
            );
            return Err(desc
                .error_at(Field::Connection(index, "to"), message, &valid)
                .into());
        };
        let to = End {
            module: spec.to.module.clone(),
            role: to,
        };
        let from = match &spec.from {
            From::Deployer => None,
            From::Port(p) => Some(Self::sender(desc, index, p, &to, built)?),
        };
        Ok(Link {
            spec: spec.clone(),
            from,
            to,
        })
    }

    /// The sending end `p` of connection `index`, which must carry what `to` receives.
    fn sender(
        desc: &Descriptor,
        index: usize,
        p: &PortRef,
        to: &End,
        built: &BTreeMap<String, Built>,
    ) -> Result<End> {
        let from_if = &built[&p.module].interface;
        let Some(from) = role(from_if, Side::From, &p.port) else {
            let valid = ports(from_if, Side::From);
            let message = format!(
                "module `{}` has no output or request `{}`",
                p.module, p.port
            );
            return Err(desc
                .error_at(Field::Connection(index, "from"), message, &valid)
                .into());
        };
        let from_kind = kind_of(&from);
        if from_kind != kind_of(&to.role) {
            let spec = &desc.connections[index];
            let message = match from_kind {
                Kind::Event => format!(
                    "`{p}` is an output, so it must connect to an input, but `{}` is a handler",
                    spec.to
                ),
                Kind::Request => format!(
                    "`{p}` is a request, so it must connect to a handler, but `{}` is an input",
                    spec.to
                ),
            };
            return Err(desc
                .error_at(Field::Connection(index, "to"), message, &[])
                .into());
        }
        Ok(End {
            module: p.module.clone(),
            role: from,
        })
    }

    /// What the connection carries.
    pub(super) fn kind(&self) -> Kind {
        kind_of(&self.to.role)
    }

    /// The connection's name.
    pub(super) fn name(&self) -> &str {
        &self.spec.name
    }

    /// The modules at its ends, the sender first, each once (a module may connect to itself).
    pub(super) fn modules(&self) -> Vec<String> {
        let mut modules: Vec<String> = self.from.iter().map(|e| e.module.clone()).collect();
        if !modules.contains(&self.to.module) {
            modules.push(self.to.module.clone());
        }
        modules
    }
}

/// The sender of a connection as its record names it: `module.port`, or `deployer`.
pub(super) fn from_string(spec: &ConnectionSpec) -> String {
    match &spec.from {
        From::Deployer => "deployer".into(),
        From::Port(p) => p.to_string(),
    }
}

/// Which end of a connection a port is on.
#[derive(Debug, Clone, Copy)]
enum Side {
    From,
    To,
}

/// The part `port` plays on `side` of a connection, as `interface` declares it.
fn role(interface: &Interface, side: Side, port: &str) -> Option<Role> {
    let port = port.to_string();
    match side {
        Side::From if interface.outputs.contains(&port) => Some(Role::Output(port)),
        Side::From if interface.requests.contains(&port) => Some(Role::Request(port)),
        Side::To if interface.inputs.contains(&port) => Some(Role::Input(port)),
        Side::To if interface.handlers.contains(&port) => Some(Role::Handler(port)),
        _ => None,
    }
}

/// Every port `interface` declares for `side`: what an end there could name.
fn ports(interface: &Interface, side: Side) -> Vec<String> {
    let (events, requests) = match side {
        Side::From => (&interface.outputs, &interface.requests),
        Side::To => (&interface.inputs, &interface.handlers),
    };
    events.iter().chain(requests).cloned().collect()
}

/// What a port playing `role` carries (an output or input carries events; `role` is one of
/// the four [`role`] resolves).
fn kind_of(role: &Role) -> Kind {
    match role {
        Role::Request(_) | Role::Handler(_) => Kind::Request,
        _ => Kind::Event,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use aex_crypto::Measurement;

    use super::*;

    /// A descriptor with modules `a` and `b` on one node, and `connections` (TOML).
    fn descriptor(dir: &std::path::Path, connections: &str) -> Descriptor {
        for m in ["a", "b"] {
            std::fs::create_dir_all(dir.join(m)).unwrap();
            std::fs::write(dir.join(m).join("Cargo.toml"), "").unwrap();
        }
        let text = format!(
            "[application]\nname = \"demo\"\n[[node]]\nname = \"n\"\naddress = \"127.0.0.1:1\"\ntee = \"sgx\"\n\
             [[module]]\nname = \"a\"\ncrate = \"a\"\nnode = \"n\"\n\
             [[module]]\nname = \"b\"\ncrate = \"b\"\nnode = \"n\"\n{connections}"
        );
        Descriptor::from_text(&dir.join("aex.toml"), text).unwrap()
    }

    /// Builds of `a` and `b` declaring these ports.
    fn built(
        outputs: &[&str],
        requests: &[&str],
        inputs: &[&str],
        handlers: &[&str],
    ) -> BTreeMap<String, Built> {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        let interface = Interface {
            outputs: names(outputs),
            inputs: names(inputs),
            requests: names(requests),
            handlers: names(handlers),
            ..Interface::default()
        };
        ["a", "b"]
            .into_iter()
            .map(|m| {
                let built = Built {
                    binary: PathBuf::from(m),
                    bytes: Arc::new(vec![]),
                    measurement: Measurement::of(b""),
                    interface: interface.clone(),
                    devices: vec![],
                    toolchain: None,
                };
                (m.to_string(), built)
            })
            .collect()
    }

    #[test]
    fn each_end_is_resolved_on_its_side() {
        let dir = tempfile::tempdir().unwrap();
        let desc = descriptor(
            dir.path(),
            "[[connection]]\nfrom = \"a.ask\"\nto = \"b.answer\"\n\
             [[connection]]\nfrom = \"deployer\"\nto = \"a.tell\"\n\
             [[connection]]\nfrom = \"a.out\"\nto = \"a.tell\"\n",
        );
        let built = built(&["out"], &["ask"], &["tell"], &["answer"]);
        let request = Link::resolve(&desc, 0, &built).unwrap();
        assert_eq!(request.kind(), Kind::Request);
        assert_eq!(request.from.unwrap().role, Role::Request("ask".into()));
        assert_eq!(request.to.role, Role::Handler("answer".into()));
        let direct = Link::resolve(&desc, 1, &built).unwrap();
        assert!(direct.from.is_none());
        assert_eq!(direct.to.role, Role::Input("tell".into()));
        assert_eq!(direct.modules(), ["a"]);
        let to_itself = Link::resolve(&desc, 2, &built).unwrap();
        assert_eq!(to_itself.kind(), Kind::Event);
        assert_eq!(to_itself.modules(), ["a"]);
    }

    #[test]
    fn a_port_both_input_and_handler_receives_events() {
        // One rule for the check and for keying: before, keying took such a port for a
        // handler while the check had taken it for an input.
        let dir = tempfile::tempdir().unwrap();
        let desc = descriptor(
            dir.path(),
            "[[connection]]\nfrom = \"a.out\"\nto = \"b.x\"\n",
        );
        let link = Link::resolve(&desc, 0, &built(&["out"], &[], &["x"], &["x"])).unwrap();
        assert_eq!(link.kind(), Kind::Event);
        assert_eq!(link.to.role, Role::Input("x".into()));
    }

    #[test]
    fn undeclared_or_mismatched_ports_are_located_errors() {
        let dir = tempfile::tempdir().unwrap();
        let desc = descriptor(
            dir.path(),
            "[[connection]]\nfrom = \"a.out\"\nto = \"b.nope\"\n\
             [[connection]]\nfrom = \"a.nope\"\nto = \"b.in\"\n\
             [[connection]]\nfrom = \"a.out\"\nto = \"b.answer\"\n",
        );
        let built = built(&["out"], &[], &["in"], &["answer"]);
        let error = |i| Link::resolve(&desc, i, &built).unwrap_err().to_string();
        assert!(
            error(0).contains("module `b` has no input or handler `nope`"),
            "{}",
            error(0)
        );
        assert!(
            error(1).contains("module `a` has no output or request `nope`"),
            "{}",
            error(1)
        );
        assert!(
            error(2).contains(
                "`a.out` is an output, so it must connect to an input, but `b.answer` is a handler"
            ),
            "{}",
            error(2)
        );
    }
}
