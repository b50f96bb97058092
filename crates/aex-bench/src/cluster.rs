//! aex applications on local `aex node` processes: one temporary directory, its nodes and its
//! descriptor per scenario.
//!
//! Nodes are started as `aex node` processes listening on free loopback ports (`127.0.0.1:0`;
//! each announces its address in `node.addr` in its data directory), with their data where
//! the deployer looks for local nodes' platform keys (`.aex/nodes/<name>/`). The descriptor
//! is written once the addresses are known, and the real deployer library does the rest.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aex_deploy::build::{Builder, Profile};
use aex_deploy::ops::deploy::BuiltApp;
use aex_deploy::progress::Quiet;
use aex_deploy::App;
use aex_proto::{NodeRequest, NodeResponse};
use anyhow::{bail, Context, Result};

use crate::procs::Guard;
use crate::RunArgs;

/// How long a node may take to listen.
const START_LIMIT: Duration = Duration::from_secs(15);

/// What every scenario needs: the `aex` binary, the repository, and one module builder.
pub struct Env {
    /// The `aex` binary that runs the nodes.
    pub aex: PathBuf,
    /// The workspace root (module crates are found from here).
    pub root: PathBuf,
    /// Builds each module crate once per run.
    pub builder: Builder,
    /// The module build profile.
    pub profile: Profile,
}

impl Env {
    /// Locates (or builds) the `aex` binary.
    pub fn new(args: &RunArgs) -> Result<Env> {
        // `AEX_BENCH_ROOT` points at another checkout, to compare two versions of the
        // runtime or node agent with the same benchmark binary.
        let root = match std::env::var_os("AEX_BENCH_ROOT") {
            Some(root) => PathBuf::from(root),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
        };
        let root = root.canonicalize().unwrap_or(root);
        let aex = match &args.aex {
            Some(path) => path.clone(),
            None => find_or_build_aex(&root)?,
        };
        let profile = Profile::from_env();
        // `AEX_PREBUILT` names binaries built elsewhere (the test kit's, in the smoke test);
        // they are measured like the bench's own builds.
        let builder = Builder::from_env().context("cannot use the prebuilt module manifest")?;
        Ok(Env {
            aex,
            root,
            builder,
            profile,
        })
    }

    /// A module crate directory, relative to the workspace root.
    pub fn crate_dir(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

/// `aex` next to this binary, brought up to date with cargo first (same target directory
/// and profile), so that the nodes never run a stale agent.
fn find_or_build_aex(root: &Path) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the aex-bench binary")?;
    let aex = exe.with_file_name("aex");
    eprintln!("building `aex` if needed (cargo build -p aex-cli)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "aex-cli", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .stdin(Stdio::null());
    // `<target>/<profile>/aex-bench`: build into the same `<target>`.
    if let Some(target) = exe.parent().and_then(Path::parent) {
        cmd.arg("--target-dir").arg(target);
    }
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let built = cmd.status().is_ok_and(|s| s.success());
    if !aex.is_file() {
        bail!(
            "cannot build `aex` at {}; pass --aex PATH to use another",
            aex.display()
        );
    }
    if !built {
        eprintln!(
            "warning: cannot rebuild `aex`; using {} as it is",
            aex.display()
        );
    }
    Ok(aex)
}

/// An application on its own local nodes.
pub struct Cluster {
    /// The deployer's view of it.
    pub app: App,
    nodes: Vec<(String, Guard)>,
    // Last: removed once the processes using it are gone.
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `nodes` and writes a descriptor with them followed by `body` (modules and
    /// connections in TOML).
    pub fn start(env: &Env, nodes: &[&str], body: &str) -> Result<Cluster> {
        Cluster::start_with(env, nodes, body, &[])
    }

    /// [`Cluster::start`], with `node_args` added to every `aex node` command line (e.g.
    /// `--limit deployer_modules=8192` for deployments beyond the default quotas).
    pub fn start_with(
        env: &Env,
        nodes: &[&str],
        body: &str,
        node_args: &[String],
    ) -> Result<Cluster> {
        let dir = tempfile::Builder::new().prefix("aex-bench-").tempdir()?;
        // A throwaway deployer identity, admitted by the benchmark's own nodes.
        let (identity, _) = aex_deploy::Identity::load_or_create(&dir.path().join("identity"))
            .context("cannot create the benchmark's deployer identity")?;
        let identity = std::sync::Arc::new(identity);
        let mut guards = vec![];
        for name in nodes {
            let data = dir.path().join(".aex/nodes").join(name);
            std::fs::create_dir_all(&data)?;
            let log = std::fs::File::create(data.join("node.log"))?;
            let guard = Guard::spawn(
                format!("node `{name}`"),
                Command::new(&env.aex)
                    .args(["node", "--name", name, "--listen", "127.0.0.1:0"])
                    .arg("--data-dir")
                    .arg(&data)
                    .args(["--tee", "sgx", "--allow-remote-shutdown"])
                    .arg("--admit")
                    .arg(identity.public().to_string())
                    .args(node_args)
                    .stdin(Stdio::null())
                    .stdout(log.try_clone()?)
                    .stderr(log),
            )?;
            guards.push((name.to_string(), guard));
        }
        let mut desc = String::from("[application]\nname = \"bench\"\n\n");
        for (name, guard) in &mut guards {
            let data = dir.path().join(".aex/nodes").join(&*name);
            let addr = wait_for_addr(&data, guard)?;
            writeln!(
                desc,
                "[[node]]\nname = \"{name}\"\naddress = \"{addr}\"\ntee = \"sgx\"\nsimulation = true\n"
            )?;
        }
        desc.push_str(body);
        std::fs::write(dir.path().join("aex.toml"), desc)?;
        let app =
            App::open(dir.path(), identity).context("cannot open the generated descriptor")?;
        Ok(Cluster {
            app,
            nodes: guards,
            _dir: dir,
        })
    }

    /// Builds (or reuses the builds of) every module of the application.
    pub fn build(&mut self, env: &mut Env) -> Result<BuiltApp> {
        Ok(aex_deploy::ops::deploy::build_all(
            &self.app,
            &mut env.builder,
            &Quiet,
        )?)
    }

    /// The process id of the node agent `node`.
    pub fn node_pid(&self, node: &str) -> Option<u32> {
        self.nodes
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, g)| g.pid())
    }

    /// The running modules of `node` and their process ids.
    pub fn module_pids(&mut self, node: &str) -> Result<Vec<(String, u32)>> {
        match self
            .app
            .request(node, "report status", NodeRequest::Status)?
        {
            NodeResponse::Status(s) => Ok(s
                .modules
                .into_iter()
                .filter_map(|m| Some((m.name, m.pid?)))
                .collect()),
            _ => bail!("node `{node}` answered status with something else"),
        }
    }

    /// Stops every node (which stops its modules) and waits for them.
    pub fn shutdown(mut self) -> Result<()> {
        for (name, _) in &self.nodes {
            let _ = self.app.request(name, "shut down", NodeRequest::Shutdown);
            self.app.disconnect(name);
        }
        for (_, guard) in &mut self.nodes {
            guard.wait(Duration::from_secs(30))?;
        }
        Ok(())
    }
}

/// Waits for a node to announce its address in `data/node.addr`.
fn wait_for_addr(data: &Path, guard: &mut Guard) -> Result<String> {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        if let Ok(addr) = std::fs::read_to_string(data.join("node.addr")) {
            return Ok(addr.trim().to_string());
        }
        if !guard.running() || Instant::now() > deadline {
            bail!(
                "a node did not start; see {}",
                data.join("node.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
