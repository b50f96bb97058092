//! Running the real `aex` binary with a deadline and inspecting its exit code and output.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{Captured, Run};
use crate::{identity, modules, paths};

/// Longest any one `aex` invocation may take. Deploys take well under a second: modules are
/// prebuilt ([`modules`]); this bounds a hang, it is not a wait.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The `aex` binary under test: `aex` beside the test binary's `deps/` directory, where
/// cargo puts it for the integration tests of `aex-cli` (`CARGO_BIN_EXE_aex`).
pub fn binary() -> PathBuf {
    let path = paths::profile_dir().join("aex");
    assert!(
        path.is_file(),
        "no aex binary at {} (build it with `cargo build -p aex-cli`)",
        path.display()
    );
    path
}

/// The `aex` command with the environment every test uses: the prebuilt modules of this test
/// run (`AEX_PREBUILT`), dev-profile builds for any other crate, no colours, default logging,
/// and the default test deployer identity (never the real home directory's).
pub fn aex() -> Command {
    with_env(Command::new(binary()))
}

/// [`aex`] run inside network namespace `netns` (`ip netns exec NETNS aex ...`, which execs
/// `aex` in place: the process is the `aex` process), for tests across
/// [`crate::netns::Hosts`].
pub fn aex_in_netns(netns: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns]).arg(binary());
    with_env(cmd)
}

/// The environment of [`aex`] on `cmd`.
fn with_env(mut cmd: Command) -> Command {
    cmd.env("AEX_IDENTITY", &identity::deployer().path)
        .env(aex_deploy::build::PREBUILT_ENV, modules::manifest())
        .env("AEX_BUILD_PROFILE", "dev")
        .env("NO_COLOR", "1")
        .env_remove("AEX_LOG")
        .env_remove("AEX_TIMEOUT")
        .stdin(Stdio::null());
    cmd
}

/// Runs `aex args...` in `dir` (if given) and waits for it, killing it after `timeout`.
#[track_caller]
pub fn run(dir: Option<&Path>, args: &[&str], timeout: Duration) -> Run {
    let mut cmd = aex();
    cmd.args(args);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    run_command(cmd, format!("aex {}", args.join(" ")), timeout)
}

/// Runs `aex args...` as the deployer whose identity file is `identity`.
#[track_caller]
pub fn run_as(identity: &Path, args: &[&str], timeout: Duration) -> Run {
    let mut cmd = aex();
    cmd.env("AEX_IDENTITY", identity).args(args);
    run_command(cmd, format!("aex {}", args.join(" ")), timeout)
}

/// Runs `cmd` (made with [`aex`], then adjusted) and waits for it, killing it after `timeout`.
#[track_caller]
pub fn run_command(cmd: Command, what: String, timeout: Duration) -> Run {
    Captured::spawn(cmd, &what).finish(timeout)
}

/// Runs `aex args...` with `AEX_CRASH_AT=point` (`aex_deploy::crash`), which must die there,
/// by SIGKILL; the test fails with what it printed otherwise.
#[track_caller]
pub fn killed_at<I, S>(point: &str, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = aex();
    cmd.env("AEX_CRASH_AT", point).args(args);
    let what = format!(
        "AEX_CRASH_AT={point} {:?}",
        cmd.get_args().collect::<Vec<_>>()
    );
    let run = run_command(cmd, what, COMMAND_TIMEOUT);
    assert_eq!(
        run.signal,
        Some(SIGKILL),
        "`{}` was not killed at its crash point (exit code {})\n--- stdout:\n{}\n--- stderr:\n{}",
        run.what,
        run.code,
        run.stdout,
        run.stderr
    );
    run
}

/// SIGKILL's number, the signal `AEX_CRASH_AT` kills the deployer with.
const SIGKILL: i32 = 9;

/// Starts `aex args...` as `identity` without waiting for it (`aex up` in the foreground).
pub fn spawn_as(identity: &Path, args: &[&str]) -> Captured {
    let mut cmd = aex();
    cmd.env("AEX_IDENTITY", identity).args(args);
    Captured::spawn(cmd, &format!("aex {}", args.join(" ")))
}
