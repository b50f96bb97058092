//! Test hosts in Linux network namespaces: separate network stacks, each with its own address,
//! joined through a bridge, created by a test and removed when it ends (also when it fails).
//!
//! Every host is a namespace whose only interfaces are `lo` and `eth0`, one end of a veth
//! pair whose other end is a port of the bridge `br0` in a namespace of its own. Addresses
//! are `192.0.2.N/24` (TEST-NET-1, RFC 5737: documentation only, routed nowhere), and no
//! namespace has a default route, so nothing started in them can reach, or be reached from,
//! any network but this one. Cutting a host's link (`ip link set DEV down` on its bridge
//! port) is a real partition: packets stop, sockets see nothing, TCP retransmits.
//!
//! It needs root (`CAP_SYS_ADMIN` and `CAP_NET_ADMIN`) and iproute2's `ip`. [`usable`] says
//! whether they are there; a test calls it and, where it cannot run, says so on stderr, and
//! fails under CI (`CI=true`) instead of passing without having run.
//!
//! Namespaces are named `aex-test-<pid>-<host>`, so parallel test runs do not meet, and a run
//! removes the namespaces a killed earlier run left behind (their pid is gone).

use std::net::Ipv4Addr;
use std::process::Command;

use crate::process::alive;

/// The prefix of every namespace this module creates.
const PREFIX: &str = "aex-test-";

/// Whether this process can create network namespaces: `Err` says why not.
pub fn usable() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("?");
    if euid != "0" {
        return Err(format!(
            "network namespaces need root (effective uid {euid}); run the long step as root"
        ));
    }
    let probe = format!("{PREFIX}{}-probe", std::process::id());
    ip(&["netns", "add", &probe]).map_err(|e| format!("cannot create a network namespace: {e}"))?;
    ip(&["netns", "del", &probe])
}

/// Whether a test that needs [`Hosts`] runs: true if it can; otherwise it says why on
/// stderr and returns false, or panics under CI (`CI=true`), where a test that did not run
/// must not pass.
pub fn run_or_explain(test: &str) -> bool {
    match usable() {
        Ok(()) => true,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test} cannot run under CI: {why}")
        }
        Err(why) => {
            // Straight to stderr, past the test harness's capture, which would hide the
            // message of a test that passes.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "{test}: NOT RUN: {why}");
            false
        }
    }
}

/// Runs `ip ARGS`; the error holds what it printed.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}`: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `ip ARGS`, which must succeed; its stdout.
#[track_caller]
fn ip_out(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip`: {e}"));
    assert!(
        out.status.success(),
        "`ip {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes the namespaces of earlier runs whose process is gone (a run killed before its
/// guard could).
fn remove_leftovers() {
    for line in ip_out(&["netns", "list"]).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| !alive(pid)) {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// Hosts on one bridge, each in its own network namespace; every namespace is removed on
/// drop (which also removes its interfaces).
pub struct Hosts {
    /// `aex-test-<pid>-`.
    prefix: String,
    /// Host names, in the order given (host `i` has address `192.0.2.(i + 1)`).
    names: Vec<String>,
    /// Namespaces created so far, removed on drop.
    created: Vec<String>,
}

impl Hosts {
    /// Creates hosts `names` and the bridge joining them; panics (after removing what it
    /// made) if the system refuses. Call [`run_or_explain`] first.
    #[track_caller]
    pub fn create(names: &[&str]) -> Hosts {
        assert!(names.len() < 200, "one /24 for every host");
        remove_leftovers();
        let mut hosts = Hosts {
            prefix: format!("{PREFIX}{}-", std::process::id()),
            names: names.iter().map(|n| n.to_string()).collect(),
            created: vec![],
        };
        let bridge = hosts.bridge_ns();
        hosts.add_ns(&bridge);
        let run = |args: &[&str]| ip(args).unwrap_or_else(|e| panic!("{e}"));
        run(&["-n", &bridge, "link", "add", "br0", "type", "bridge"]);
        run(&["-n", &bridge, "link", "set", "br0", "up"]);
        for (i, name) in names.iter().enumerate() {
            let ns = hosts.ns(name);
            hosts.add_ns(&ns);
            let port = Hosts::port(i);
            run(&[
                "-n", &bridge, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            run(&["-n", &bridge, "link", "set", &port, "master", "br0"]);
            run(&["-n", &bridge, "link", "set", &port, "up"]);
            let cidr = format!("{}/24", hosts.ip(name));
            run(&["-n", &ns, "addr", "add", &cidr, "dev", "eth0"]);
            run(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        hosts
    }

    fn add_ns(&mut self, ns: &str) {
        if let Err(e) = ip(&["netns", "add", ns]) {
            panic!("{e}");
        }
        self.created.push(ns.to_string());
        ip(&["-n", ns, "link", "set", "lo", "up"]).unwrap_or_else(|e| panic!("{e}"));
    }

    fn bridge_ns(&self) -> String {
        format!("{}bridge", self.prefix)
    }

    fn port(index: usize) -> String {
        format!("port{index}")
    }

    fn index(&self, host: &str) -> usize {
        self.names
            .iter()
            .position(|n| n == host)
            .unwrap_or_else(|| panic!("no host `{host}` among {:?}", self.names))
    }

    /// The network namespace of `host` (for `ip netns exec`).
    pub fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    /// The address of `host`.
    pub fn ip(&self, host: &str) -> Ipv4Addr {
        let i = u8::try_from(self.index(host) + 1).expect("fewer than 200 hosts");
        Ipv4Addr::new(192, 0, 2, i)
    }

    /// Cuts `host`'s link: its bridge port goes down, and nothing crosses until [`Hosts::heal`].
    #[track_caller]
    pub fn cut(&self, host: &str) {
        let port = Hosts::port(self.index(host));
        ip(&["-n", &self.bridge_ns(), "link", "set", &port, "down"])
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Brings `host`'s link back up.
    #[track_caller]
    pub fn heal(&self, host: &str) {
        let port = Hosts::port(self.index(host));
        ip(&["-n", &self.bridge_ns(), "link", "set", &port, "up"])
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Bytes that crossed `host`'s bridge port so far: (from the host, to the host).
    pub fn port_bytes(&self, host: &str) -> (u64, u64) {
        let port = Hosts::port(self.index(host));
        let json = ip_out(&["-n", &self.bridge_ns(), "-j", "-s", "link", "show", &port]);
        let links: serde_json::Value = serde_json::from_str(&json).expect("`ip -j` prints JSON");
        let stats = &links[0]["stats64"];
        let bytes = |dir: &str| stats[dir]["bytes"].as_u64().unwrap_or(0);
        (bytes("rx"), bytes("tx"))
    }

    /// The interfaces of `host`'s namespace and its routes, as `ip` prints them (to show,
    /// and check, that it reaches nothing but the bridge).
    pub fn describe(&self, host: &str) -> (Vec<String>, Vec<String>) {
        let ns = self.ns(host);
        let links = ip_out(&["-n", &ns, "-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(|name| name.trim().split('@').next().unwrap_or("").to_string())
            .collect();
        let routes = ip_out(&["-n", &ns, "route", "show"])
            .lines()
            .map(str::to_string)
            .collect();
        (links, routes)
    }

    /// Whether process `pid` runs in `host`'s network namespace.
    pub fn runs_in(&self, pid: u32, host: &str) -> bool {
        use std::os::unix::fs::MetadataExt;
        let ns = std::fs::metadata(format!("/run/netns/{}", self.ns(host)));
        let of_pid = std::fs::metadata(format!("/proc/{pid}/ns/net"));
        match (ns, of_pid) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        }
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // Removing a namespace removes its interfaces, and a veth pair goes with either end.
        for ns in self.created.iter().rev() {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("cannot remove network namespace {ns}: {e}");
            }
        }
    }
}
