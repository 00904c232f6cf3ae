//! Disk faults (#20), on single servers (`-server -bootstrap-expect=1` with a data directory,
//! free ports on 127.0.0.1) and one three-server cluster (127.0.0.191–193):
//!
//! - the data directory on a small tmpfs that fills up: writes are refused with a 500 naming
//!   the file and the error, reads keep being answered, and once space is freed the server takes
//!   writes again by itself; nothing acknowledged is lost (checked after a `kill -9` too);
//! - a follower's disk fills up: the cluster goes on, the follower catches up once space is
//!   freed;
//! - a damaged Raft log (the file cut short; a byte of the last record flipped): the server
//!   refuses to start and its log names the file — it never serves what the damage made up.
//!
//! Mounting needs root (CI runs as root).

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{http_request, isolated_config_with, start, wait_for, Proc};

/// A tmpfs of `size` mounted on a fresh directory, unmounted (lazily, so a process still
/// holding a file cannot keep it) and removed when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            o.status.success(),
            "mount -t tmpfs failed (the disk-fault tests need root): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fill the filesystem holding `path` with `path` itself until it is full.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = f.write_all(&chunk) {
            assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}");
            break;
        }
    }
    // Whatever fits in less than a chunk.
    while f.write_all(&[0u8; 512]).is_ok() {}
}

/// One single-server agent with its data in `data`, its config and log in `dir`.
struct Single {
    http: u16,
    args: Vec<String>,
    log: PathBuf,
    proc: Option<Proc>,
}

impl Single {
    /// `extra`: top-level config fields, each followed by a comma.
    fn new(dir: &Path, data: &Path, extra: &str) -> Single {
        let http = common::free_port();
        let cfg = isolated_config_with(dir, http, extra);
        Single {
            http,
            args: vec![
                "agent".into(),
                "-server".into(),
                "-bootstrap-expect=1".into(),
                "-node=df".into(),
                "-bind=127.0.0.1".into(),
                format!("-data-dir={}", data.display()),
                format!("-config-file={}", cfg.display()),
            ],
            log: dir.join("agent.log"),
            proc: None,
        }
    }

    fn start(&mut self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.proc = Some(start(&args, &self.log));
    }

    /// Start and wait until it leads and takes writes.
    fn start_leading(&mut self) {
        self.start();
        wait_for("the server to take writes", Duration::from_secs(30), || {
            if let Some(s) = self.exited() {
                panic!("exited ({s})\n{}", self.log_text());
            }
            self.req("PUT", "/v1/kv/ready", "1") == Some((200, "true".into()))
        });
    }

    fn req(&self, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
        http_request("127.0.0.1", self.http, method, path, body)
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.proc
            .as_mut()
            .and_then(|p| p.0.try_wait().ok().flatten())
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill9(&mut self) {
        drop(self.proc.take());
    }

    /// SIGTERM (a clean stop: servers do not leave), waiting for the exit.
    fn stop(&mut self) {
        let mut p = self.proc.take().expect("running");
        unsafe { libc::kill(p.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while p.0.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start on a damaged data directory: it must exit with an error naming `file` and never
    /// answer a read meanwhile with data it does not hold.
    fn refuses_to_start(&mut self, file: &str, written: &[(String, String)]) {
        self.start();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.exited() {
                break s;
            }
            // Until it exits, whatever it answers must be right.
            for (k, v) in written {
                if let Some((200, got)) = self.req("GET", &format!("/v1/kv/{k}?raw&stale"), "") {
                    assert_eq!(&got, v, "served a damaged value for {k}");
                }
            }
            assert!(
                Instant::now() < deadline,
                "the server started on a damaged {file}\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = self.log_text();
        assert!(!status.success(), "exit status {status}\n{log}");
        assert!(
            log.lines()
                .any(|l| l.contains(file) && l.contains("damaged")),
            "no error naming {file}:\n{log}"
        );
        self.proc = None;
    }
}

#[test]
fn full_disk_refuses_writes_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount("16m");
    let data = fs.path().join("data");
    let mut s = Single::new(dir.path(), &data, "");
    s.start_leading();

    // Writes until the disk is full: every one is either acknowledged or refused with a 500
    // saying so; nothing hangs.
    let mut acked = Vec::new();
    for i in 0..20 {
        let k = format!("before/{i}");
        assert_eq!(
            s.req("PUT", &format!("/v1/kv/{k}"), &k),
            Some((200, "true".into()))
        );
        acked.push((k.clone(), k));
    }
    fill(&fs.path().join("filler"));
    let value = "x".repeat(8 * 1024);
    let mut refused = None;
    for i in 0..4000 {
        let k = format!("fill/{i:05}");
        match s.req("PUT", &format!("/v1/kv/{k}"), &value) {
            Some((200, b)) if b == "true" => acked.push((k, value.clone())),
            Some((500, b)) => {
                refused = Some(b);
                break;
            }
            other => panic!("write {k} answered {other:?}\n{}", s.log_text()),
        }
    }
    let refused = refused.expect("no write was refused on a full disk");
    assert!(
        refused.contains("No space left on device") && refused.contains("raft.redb"),
        "{refused}"
    );
    // Later writes are refused at once, with the same message, and are not applied.
    for i in 0..3 {
        let started = Instant::now();
        let r = s.req("PUT", &format!("/v1/kv/refused/{i}"), "no");
        assert_eq!(r.as_ref().map(|r| r.0), Some(500), "{r:?}");
        assert!(r.unwrap().1.contains("No space left on device"));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "refusal took {:?}",
            started.elapsed()
        );
    }
    // Reads keep being answered, from what was acknowledged.
    for (k, v) in acked.iter().take(20) {
        assert_eq!(
            s.req("GET", &format!("/v1/kv/{k}?raw"), ""),
            Some((200, v.clone()))
        );
        assert_eq!(
            s.req("GET", &format!("/v1/kv/{k}?raw&stale"), ""),
            Some((200, v.clone()))
        );
    }
    assert!(
        s.log_text().contains("No space left on device"),
        "the log says nothing about the full disk"
    );
    assert!(s.exited().is_none(), "the server stopped\n{}", s.log_text());

    // Space returns: the server takes writes again by itself.
    std::fs::remove_file(fs.path().join("filler")).unwrap();
    wait_for("writes accepted again", Duration::from_secs(30), || {
        s.req("PUT", "/v1/kv/after", "space") == Some((200, "true".into()))
    });
    for i in 0..3 {
        assert_eq!(
            s.req("GET", &format!("/v1/kv/refused/{i}?consistent"), "")
                .map(|r| r.0),
            Some(404)
        );
    }
    acked.push(("after".into(), "space".into()));
    let check = |s: &Single| {
        for (k, v) in &acked {
            assert_eq!(
                s.req("GET", &format!("/v1/kv/{k}?raw&consistent"), ""),
                Some((200, v.clone())),
                "acknowledged {k}"
            );
        }
    };
    check(&s);
    assert!(s.log_text().contains("writes resumed"), "{}", s.log_text());

    // And all of it survives a crash.
    s.kill9();
    s.start_leading();
    check(&s);
}

/// A single server (config fields `extra`) that took `n` writes and was stopped cleanly, and
/// the writes.
fn stopped_server(dir: &Path, n: usize, extra: &str) -> (Single, Vec<(String, String)>) {
    let data = dir.join("data");
    let mut s = Single::new(dir, &data, extra);
    s.start_leading();
    let mut written = Vec::new();
    for i in 0..n {
        let (k, v) = (
            format!("k/{i:03}"),
            format!("value-{i:03}-{}", "v".repeat(64)),
        );
        assert_eq!(
            s.req("PUT", &format!("/v1/kv/{k}"), &v),
            Some((200, "true".into()))
        );
        written.push((k, v));
    }
    s.stop();
    (s, written)
}

#[test]
fn truncated_raft_log_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, written) = stopped_server(dir.path(), 50, "");
    let file = dir.path().join("data/raft/raft.redb");
    let len = std::fs::metadata(&file).unwrap().len();
    // Cut the file short (a lost tail: a torn copy, a disk that lied about a flush).
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    s.refuses_to_start("raft.redb", &written);
}

/// Flip one byte of each copy of `needle` in `file`; how many there were.
fn flip_all(file: &Path, needle: &[u8], at: usize) -> usize {
    let mut bytes = std::fs::read(file).unwrap();
    let mut flipped = 0;
    let mut from = 0;
    while let Some(p) = bytes[from..]
        .windows(needle.len())
        .position(|w| w == needle)
    {
        let p = from + p;
        bytes[p + at] ^= 0x01;
        flipped += 1;
        from = p + needle.len();
    }
    std::fs::write(file, &bytes).unwrap();
    flipped
}

#[test]
fn flipped_byte_in_snapshot_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // A snapshot every 8 entries, so the writes end up in one.
    let (mut s, written) = stopped_server(dir.path(), 50, r#""raft_snapshot_threshold": 8,"#);
    let file = dir.path().join("data/raft/snapshots/current.snap");
    assert!(file.exists(), "no snapshot was taken");
    // A value the snapshot holds: msgpack still decodes it, only to a different value.
    let flipped = (0..written.len())
        .rev()
        .map(|i| flip_all(&file, written[i].1.as_bytes(), 6))
        .find(|n| *n > 0);
    assert!(flipped.is_some(), "no written value in {}", file.display());
    s.refuses_to_start("current.snap", &written);
}

#[test]
fn flipped_byte_in_last_log_record_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, written) = stopped_server(dir.path(), 50, "");
    let file = dir.path().join("data/raft/raft.redb");
    // The last write's value, wherever redb holds it: one byte flipped in each copy, so the
    // record still decodes, only to a different value ("value-049…" → "value-149…").
    let flipped = flip_all(&file, written.last().unwrap().1.as_bytes(), 6);
    assert!(
        flipped > 0,
        "the last record's value is not in {}",
        file.display()
    );
    s.refuses_to_start("raft.redb", &written);
}

/// Three servers (127.0.0.191–193), each with its data on its own tmpfs; one follower's fills
/// up. The other two go on taking writes, the follower says why it cannot keep up and does not
/// stop, and once space is freed it catches up by itself.
#[test]
fn full_disk_on_a_follower_does_not_stop_the_cluster() {
    use common::cluster::{agreed_leader, http};
    const IPS: [&str; 3] = ["127.0.0.191", "127.0.0.192", "127.0.0.193"];
    let dir = tempfile::tempdir().unwrap();
    let mounts: Vec<Tmpfs> = (0..3).map(|_| Tmpfs::mount("32m")).collect();
    let name = |i: usize| format!("s{}", i + 1);
    // Each server's data on its tmpfs, its log in `dir` (a full disk must not silence it).
    let mut servers: Vec<Proc> = (0..3)
        .map(|i| {
            start(
                &[
                    "agent",
                    "-server",
                    "-bootstrap-expect=3",
                    &format!("-node={}", name(i)),
                    &format!("-bind={}", IPS[i]),
                    &format!("-client={}", IPS[i]),
                    &format!("-data-dir={}", mounts[i].path().join("data").display()),
                    &format!("-retry-join={}", IPS[0]),
                    "-retry-interval=1s",
                ],
                &dir.path().join(format!("{}.log", name(i))),
            )
        })
        .collect();
    wait_for("a leader everywhere", Duration::from_secs(30), || {
        agreed_leader(&IPS).is_some()
    });
    let leader = agreed_leader(&IPS).unwrap();
    let l = IPS.iter().position(|ip| leader.starts_with(ip)).unwrap();
    let f = (l + 1) % 3;
    let log_of = |i: usize| {
        std::fs::read_to_string(dir.path().join(format!("{}.log", name(i)))).unwrap_or_default()
    };
    let put = |i: usize, k: &str, v: &str| {
        assert_eq!(
            http(IPS[l], "PUT", &format!("/v1/kv/{k}"), v),
            Some((200, "true".into())),
            "write {i}\n{}",
            log_of(l)
        );
    };
    for i in 0..10 {
        put(i, &format!("before/{i}"), "x");
    }
    fill(&mounts[f].path().join("filler"));

    let value = "y".repeat(8 * 1024);
    for i in 0..100 {
        put(i, &format!("during/{i:03}"), &value);
    }
    wait_for(
        "the follower to report its full disk",
        Duration::from_secs(30),
        || log_of(f).contains("No space left on device"),
    );
    assert!(
        servers[f].0.try_wait().unwrap().is_none(),
        "the follower stopped\n{}",
        log_of(f)
    );

    std::fs::remove_file(mounts[f].path().join("filler")).unwrap();
    put(100, "after", "space");
    wait_for("the follower to catch up", Duration::from_secs(60), || {
        http(IPS[f], "GET", "/v1/kv/after?raw&stale", "") == Some((200, "space".into()))
    });
    for i in 0..100 {
        assert_eq!(
            http(
                IPS[f],
                "GET",
                &format!("/v1/kv/during/{i:03}?raw&stale"),
                ""
            ),
            Some((200, value.clone()))
        );
    }
    assert!(log_of(f).contains("writes resumed"), "{}", log_of(f));
    // The servers must be gone before their filesystems are unmounted.
    servers.clear();
}

/// What `docs/outage-recovery.md` tells the operator of a server whose Raft files are damaged:
/// move its `raft` directory away and start it again. It rejoins (127.0.0.197–199) with its
/// node ID, gets the data from the leader, and the cluster keeps one leader and three voters.
#[test]
fn a_server_with_its_raft_dir_moved_away_rejoins() {
    use common::cluster::{agreed_leader, http, server};
    const IPS: [&str; 3] = ["127.0.0.197", "127.0.0.198", "127.0.0.199"];
    let dir = tempfile::tempdir().unwrap();
    let name = |i: usize| format!("s{}", i + 1);
    let mut servers: Vec<Proc> = (0..3)
        .map(|i| server(dir.path(), &name(i), IPS[i], IPS[0]))
        .collect();
    wait_for("a leader everywhere", Duration::from_secs(30), || {
        agreed_leader(&IPS).is_some()
    });
    for i in 0..30 {
        assert_eq!(
            http(IPS[0], "PUT", &format!("/v1/kv/k/{i}"), &format!("v{i}")),
            Some((200, "true".into()))
        );
    }
    let leader = agreed_leader(&IPS).unwrap();
    let f = (IPS.iter().position(|ip| leader.starts_with(ip)).unwrap() + 1) % 3;
    // Stopped (kill -9), its Raft state moved away, started again.
    let _ = servers[f].0.kill();
    let _ = servers[f].0.wait();
    let raft = dir.path().join(name(f)).join("raft");
    std::fs::rename(&raft, raft.with_extension("damaged")).unwrap();
    servers[f] = server(dir.path(), &name(f), IPS[f], IPS[0]);
    let log = || std::fs::read_to_string(dir.path().join(format!("{}.log", name(f)))).unwrap();
    wait_for(
        "the data on the rejoined server",
        Duration::from_secs(60),
        || http(IPS[f], "GET", "/v1/kv/k/29?raw&stale", "") == Some((200, "v29".into())),
    );
    assert_eq!(
        http(IPS[f], "PUT", "/v1/kv/after", "rejoined"),
        Some((200, "true".into())),
        "{}",
        log()
    );
    wait_for("one leader for all three", Duration::from_secs(30), || {
        agreed_leader(&IPS).is_some()
    });
    let o = common::cluster::cli(IPS[f], &["operator", "raft", "list-peers"]);
    let peers = common::stdout(&o);
    assert_eq!(peers.lines().count(), 4, "{peers}");
    let voters = peers
        .lines()
        .skip(1)
        .filter(|l| l.split_whitespace().nth(4) == Some("true"))
        .count();
    assert_eq!(voters, 3, "{peers}");
    assert_eq!(peers.matches("leader").count(), 1, "{peers}");
    for i in 0..30 {
        assert_eq!(
            http(IPS[f], "GET", &format!("/v1/kv/k/{i}?raw&stale"), ""),
            Some((200, format!("v{i}")))
        );
    }
}
