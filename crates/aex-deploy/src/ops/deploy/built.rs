//! Building every module of an application and checking the descriptor against what the
//! binaries declare, before any node is touched.

use std::collections::BTreeMap;

use super::check::{check_connections, check_periodic, check_persistent};
use super::endpoints::Link;
use crate::app::App;
use crate::build::{Builder, Built};
use crate::descriptor::Language;
use crate::error::{Error, Result};
use crate::progress::Observer;

/// Every module of the application built, and its connections resolved against the interfaces
/// the binaries declare: what a deployment works from.
#[derive(Debug, Clone)]
pub struct BuiltApp {
    /// Each module's build, by module name.
    pub modules: BTreeMap<String, Built>,
    /// The descriptor's connections with their ends resolved, in file order.
    pub(super) links: Vec<Link>,
}

/// Builds every module of the application, checks the descriptor against the binaries and
/// resolves its connections' ends.
pub fn build_all(app: &App, builder: &mut Builder, obs: &dyn Observer) -> Result<BuiltApp> {
    obs.phase("build", app.descriptor().modules.len() as u64);
    let mut built = BTreeMap::new();
    for m in &app.descriptor().modules {
        let b = match m.language {
            Language::C => builder.build_c(&m.crate_dir),
            _ => builder.build(&m.crate_dir),
        };
        let b = b
            .map_err(|source| Error::Build {
                module: m.name.clone(),
                source,
            })?
            .bound_to(&m.devices);
        obs.advance(&m.name);
        built.insert(m.name.clone(), b);
    }
    obs.finish();
    assemble(app, built)
}

/// The application from modules built elsewhere (a governor deploys a member's builds):
/// checks the descriptor against what `built` declares and resolves its connections' ends,
/// as [`build_all`] does after building.
pub fn assemble(app: &App, built: BTreeMap<String, Built>) -> Result<BuiltApp> {
    let links = check_connections(app, &built)?;
    check_periodic(app, &built)?;
    check_persistent(app, &built)?;
    Ok(BuiltApp {
        modules: built,
        links,
    })
}
