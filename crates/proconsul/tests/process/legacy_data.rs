//! Data written by an older build still loads: a durable server's Raft log and a `snapshot
//! save` archive made by the session-4 build (`tests/fixtures/legacy-v1`, written by
//! `tests/fixtures/make-legacy-data.sh`, one entry of each kind) are served by this build with
//! the same state — KV values (binary, empty, flags), catalog registrations and
//! deregistrations, a session holding a lock, a transaction, autopilot's configuration.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::{cli, free_port, http_get, isolated_config, start, start_dev, stdout, wait_for};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/legacy-v1");

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn json(port: u16, path: &str) -> serde_json::Value {
    let (code, body) = http_get(port, path).unwrap();
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn raw(port: u16, key: &str) -> Option<Vec<u8>> {
    let (code, body) = http_get(port, &format!("/v1/kv/{key}?raw"))?;
    (code == 200).then(|| body.into_bytes())
}

/// What every entry kind in the fixture left behind.
fn assert_fixture_state(port: u16) {
    let session = std::fs::read_to_string(Path::new(FIXTURE).join("session-id")).unwrap();
    let session = session.trim();
    assert_eq!(raw(port, "app/color").as_deref(), Some(&b"blue"[..]));
    assert_eq!(raw(port, "app/binary").as_deref(), Some(&b"a\x01b"[..]));
    assert_eq!(raw(port, "txn/a").as_deref(), Some(&b"aaa"[..]));
    assert_eq!(
        http_get(port, "/v1/kv/gone").unwrap().0,
        404,
        "a deleted key"
    );
    let flags = json(port, "/v1/kv/app/flags");
    assert_eq!(flags[0]["Flags"], 42);
    assert_eq!(json(port, "/v1/kv/txn/b")[0]["Flags"], 7);
    let empty = json(port, "/v1/kv/app/empty");
    assert_eq!(empty[0]["Key"], "app/empty");
    let lock = json(port, "/v1/kv/app/leader");
    assert_eq!(lock[0]["Session"], session, "{lock}");
    assert_eq!(lock[0]["LockIndex"], 1, "{lock}");

    let db = json(port, "/v1/catalog/service/db");
    assert_eq!(db[0]["Node"], "ext", "{db}");
    assert_eq!(db[0]["Address"], "10.1.2.3");
    assert_eq!(db[0]["NodeMeta"]["rack"], "r1");
    assert_eq!(db[0]["TaggedAddresses"]["wan"], "1.2.3.4");
    assert_eq!(db[0]["ServiceID"], "db1");
    assert_eq!(db[0]["ServiceTags"][0], "primary");
    assert_eq!(db[0]["ServicePort"], 5432);
    assert_eq!(db[0]["ServiceMeta"]["v"], "1");
    let checks = json(port, "/v1/health/checks/db");
    assert_eq!(checks[0]["CheckID"], "db-alive", "{checks}");
    assert_eq!(checks[0]["Status"], "passing");
    assert_eq!(checks[0]["Output"], "ok");
    assert_eq!(
        json(port, "/v1/catalog/service/cache"),
        serde_json::json!([])
    );

    let s = json(port, &format!("/v1/session/info/{session}"));
    assert_eq!(s[0]["Name"], "locker", "{s}");
    assert_eq!(s[0]["TTL"], "3600s");
    assert_eq!(s[0]["LockDelay"], 1_000_000_000u64);

    let ap = json(port, "/v1/operator/autopilot/configuration");
    assert_eq!(ap["LastContactThreshold"], "250ms", "{ap}");
    assert_eq!(ap["MaxTrailingLogs"], 300);
}

#[test]
fn a_raft_log_written_by_the_previous_build_replays() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&Path::new(FIXTURE).join("raft"), &data.join("raft"));
    std::fs::copy(Path::new(FIXTURE).join("node-id"), data.join("node-id")).unwrap();
    let port = free_port();
    let cfg = isolated_config(dir.path(), port);
    let _agent = start(
        &[
            "agent",
            "-server",
            "-bootstrap",
            "-node=legacy",
            "-bind=127.0.0.1",
            &format!("-data-dir={}", data.display()),
            &format!("-config-file={}", cfg.display()),
        ],
        &dir.path().join("log"),
    );
    wait_for("the replayed state", Duration::from_secs(30), || {
        http_get(port, "/v1/kv/txn/a").is_some_and(|(c, _)| c == 200)
    });
    assert_fixture_state(port);
}

#[test]
fn a_snapshot_archive_saved_by_the_previous_build_restores() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = isolated_config(dir.path(), port);
    let _agent = start_dev(&cfg, port, &dir.path().join("log"));
    let snap = Path::new(FIXTURE).join("state.snap");
    let o = cli(port, &["snapshot", "restore", snap.to_str().unwrap()]);
    assert_eq!(stdout(&o), "Restored snapshot\n", "{o:?}");
    assert_fixture_state(port);
}
