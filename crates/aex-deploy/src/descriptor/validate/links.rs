//! The checks of connections and `[[up]]` steps (the entries that refer to modules by
//! `module.port` or `module.entry`), and of the `[[run]]` commands that follow the steps.

use std::collections::HashMap;

use aex_crypto::Algorithm;

use super::{valid_name, Checker, NAME_RULE};
use crate::descriptor::error::DescriptorError;
use crate::descriptor::field::{Field, Section};
use crate::descriptor::model::{self, ConnectionSpec, PortRef, RunStep, UpStep};
use crate::descriptor::raw::{RawConnection, RawRun, RawUp};
use crate::descriptor::suggest;

impl Checker<'_> {
    pub(super) fn connection(
        &self,
        i: usize,
        connection: &RawConnection,
        modules: &[String],
    ) -> Result<ConnectionSpec, DescriptorError> {
        let from = if connection.from == "deployer" {
            model::From::Deployer
        } else {
            model::From::Port(self.port(Field::Connection(i, "from"), &connection.from, modules)?)
        };
        if connection.to == "deployer" {
            let message = "a connection cannot go to the deployer".to_owned();
            let help = "`deployer` is only valid in `from`, for a direct connection to a module's input or handler";
            return Err(self.error(Field::Connection(i, "to"), message, Some(help.to_owned())));
        }
        let to = self.port(Field::Connection(i, "to"), &connection.to, modules)?;
        let algorithm = match &connection.algorithm {
            None => Algorithm::default(),
            Some(name) => Algorithm::from_name(name).ok_or_else(|| {
                let names: Vec<String> =
                    Algorithm::ALL.iter().map(|a| a.name().to_owned()).collect();
                let help = suggest::help(name, "algorithms", &names);
                self.error(
                    Field::Connection(i, "algorithm"),
                    format!("unknown algorithm `{name}`"),
                    help,
                )
            })?,
        };
        let name = connection
            .name
            .clone()
            .unwrap_or_else(|| format!("{from}->{to}"));
        if name.is_empty()
            || name.len() > 128
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            let help = "connection names are 1 to 128 characters without spaces".to_owned();
            return Err(self.error(
                Field::Connection(i, "name"),
                format!("invalid connection name `{name}`"),
                Some(help),
            ));
        }
        Ok(ConnectionSpec {
            name,
            from,
            to,
            algorithm,
        })
    }

    pub(super) fn up(
        &self,
        i: usize,
        step: &RawUp,
        modules: &[String],
    ) -> Result<UpStep, DescriptorError> {
        let call = self.port(Field::Up(i, "call"), &step.call, modules)?;
        if step
            .until
            .as_ref()
            .is_some_and(|field| field.trim().is_empty())
        {
            let help =
                "name the result field that becomes `true` when done, or remove `until`".to_owned();
            return Err(self.error(
                Field::Up(i, "until"),
                "empty `until` field name".to_owned(),
                Some(help),
            ));
        }
        Ok(UpStep {
            module: call.module,
            entry: call.port,
            payload: step.payload.clone().unwrap_or_default().into_bytes(),
            until: step.until.clone(),
            show: step.show.unwrap_or(false),
        })
    }

    /// A `[[run]]` command: a program, then its arguments.
    pub(super) fn run(&self, i: usize, step: &RawRun) -> Result<RunStep, DescriptorError> {
        if step.command.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(self.error(
                Field::Run(i, "command"),
                "no program to run".to_owned(),
                Some(
                    "give the program and its arguments, e.g. `command = [\"sh\", \"demo.sh\"]`"
                        .to_owned(),
                ),
            ));
        }
        Ok(RunStep {
            command: step.command.clone(),
        })
    }

    /// Parses `module.port` (`module.entry` for an `up` step) and checks the module is declared.
    pub(super) fn port(
        &self,
        field: Field,
        text: &str,
        modules: &[String],
    ) -> Result<PortRef, DescriptorError> {
        let Some((module, port)) = text
            .split_once('.')
            .filter(|(m, p)| valid_name(m) && valid_name(p))
        else {
            let (form, example) = match field.parts() {
                (_, _, "from") => (
                    "module.port",
                    "`ping.ping`, or `deployer` for a direct connection",
                ),
                (Section::Up, _, _) => ("module.entry", "`ping.start`"),
                (Section::Periodic, _, _) => ("module.entry", "`sensor.tick`"),
                _ => ("module.port", "`ping.ping`"),
            };
            let help = format!(
                "write the module and {} names, e.g. {example}; {NAME_RULE}",
                &form[7..]
            );
            return Err(self.error(field, format!("`{text}` is not `{form}`"), Some(help)));
        };
        if !modules.iter().any(|m| m == module) {
            let help = suggest::help(module, "modules", modules)
                .or_else(|| Some("no modules are declared".to_owned()));
            return Err(self.error(field, format!("no module `{module}`"), help));
        }
        Ok(PortRef {
            module: module.to_owned(),
            port: port.to_owned(),
        })
    }

    /// Fails on a connection with the same ends as an earlier one.
    pub(super) fn distinct_ends(
        &self,
        connections: &[ConnectionSpec],
    ) -> Result<(), DescriptorError> {
        let mut ends = HashMap::new();
        for (i, connection) in connections.iter().enumerate() {
            if let Some(first) = ends.insert((&connection.from, &connection.to), i) {
                let name = &connection.name;
                let message = format!(
                    "connection `{name}` repeats connection[{first}]: same `from` and `to`"
                );
                let help = Some("remove one of them".to_owned());
                return Err(self.error(Field::Connection(i, "to"), message, help));
            }
        }
        Ok(())
    }
}
