//! A test network of `ip netns` namespaces, one server process in each — for tests that cut
//! links between real servers (`partition`, `linearize`).
//!
//! The node namespaces plug into a bridge that lives in one more namespace (the hub); nothing
//! is added to the test's own namespace, and the cluster's addresses (10.231.0.0/24) exist only
//! inside these namespaces, so no packet can leave the machine. Each agent serves HTTP on
//! 127.0.0.1 inside its namespace; the test reaches it from a thread that has joined that
//! namespace (`setns`), so it can still talk to a server whose cluster links are cut.
//!
//! Needs root and `ip` (iproute2): tests call [`skip_reason`] first and pass with `skipping:`
//! without them. Every namespace (and with it every veth, route and the bridge) is deleted when
//! the [`Net`] is dropped. Names carry the test's tag and pid so parallel tests do not clash.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{Proc, BIN};
use proconsul_testkit::{request_blocking, Response};

const SUBNET: &str = "10.231.0";

/// The namespaces and links of the test network. Dropping it deletes them all.
pub struct Net {
    hub: String,
    pub nodes: Vec<String>,
    created: Vec<String>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Net {
    /// `n` namespaces on one bridge, named after `tag`; node `i` gets `10.231.0.(11+i)/24` on
    /// its `eth0`.
    pub fn create(tag: &str, n: usize) -> Result<Net, String> {
        let pid = std::process::id();
        let mut net = Net {
            hub: format!("pc{tag}{pid}hub"),
            nodes: (0..n).map(|i| format!("pc{tag}{pid}n{i}")).collect(),
            created: Vec::new(),
        };
        for ns in std::iter::once(net.hub.clone()).chain(net.nodes.clone()) {
            ip(&["netns", "add", &ns])?;
            net.created.push(ns.clone());
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        let hub = net.hub.clone();
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for (i, ns) in net.nodes.iter().enumerate() {
            let port = format!("v{i}");
            ip(&[
                "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                ns,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &port, "up"])?;
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/24", addr(i)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
        }
        Ok(net)
    }

    /// Cut (or restore) node `i`'s cable: its port on the bridge goes down (or up).
    pub fn cut(&self, i: usize, cut: bool) {
        let state = if cut { "down" } else { "up" };
        ip(&["-n", &self.hub, "link", "set", &format!("v{i}"), state]).unwrap();
    }

    /// Stop (or let through again) the packets between nodes `a` and `b`, both ways: each
    /// side's route to the other becomes a blackhole. Other links are untouched, so partitions
    /// of any shape (a bridge: two halves joined by one node) can be built.
    pub fn block(&self, a: usize, b: usize, block: bool) {
        for (from, to) in [(a, b), (b, a)] {
            let verb = if block { "add" } else { "del" };
            let target = format!("{}/32", addr(to));
            ip(&["-n", &self.nodes[from], "route", verb, "blackhole", &target]).unwrap();
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.created.drain(..) {
            if let Err(e) = ip(&["netns", "del", &ns]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

/// Node `i`'s cluster address.
pub fn addr(i: usize) -> String {
    format!("{SUBNET}.{}", 11 + i)
}

/// Join network namespace `ns` with the calling thread (for a thread that will only talk
/// inside it).
pub fn enter_netns(ns: &str) {
    let path = format!("/run/netns/{ns}");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // SAFETY: setns only changes the calling thread's network namespace; the file descriptor
    // is valid for the call.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

/// Run `f` on a thread that has joined network namespace `ns`.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(move || {
            enter_netns(ns);
            f()
        })
        .join()
        .unwrap()
    })
}

/// One HTTP request to the agent at 127.0.0.1:8500 inside `ns`; `None` without a complete
/// answer.
pub fn http(ns: &str, method: &str, path: &str, body: &str) -> Option<Response> {
    in_netns(ns, || {
        let r = request_blocking(("127.0.0.1", 8500), method, path, body.as_bytes());
        (r.status != 0).then_some(r)
    })
}

/// The leader `ns`'s agent names (`ip:port`), `Some("")` when it knows none.
pub fn leader(ns: &str) -> Option<String> {
    let r = http(ns, "GET", "/v1/status/leader", "")?;
    (r.status == 200).then(|| r.text().trim().trim_matches('"').to_string())
}

/// Server `s<i>` of a three-server cluster in node `i`'s namespace, data in `dir/s<i>`, its
/// output appended to `dir/s<i>.log` (so a restarted server keeps one log).
pub fn server(net: &Net, dir: &Path, i: usize) -> Proc {
    let name = format!("s{i}");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .unwrap();
    let data = dir.join(&name);
    Proc(
        Command::new("ip")
            .args(["netns", "exec", &net.nodes[i], BIN])
            .args([
                "agent",
                "-server",
                "-bootstrap-expect=3",
                &format!("-node={name}"),
                &format!("-bind={}", addr(i)),
                "-client=127.0.0.1",
                &format!("-data-dir={}", data.display()),
                &format!("-retry-join={}", addr(0)),
                "-retry-interval=1s",
            ])
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    )
}

/// Why a network-namespace test cannot run here, if it cannot.
pub fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("network namespaces need root".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("`ip` (iproute2) is not installed".into()),
    }
}
