//! KV, txn and blocking queries over a real socket against `agent -dev`.

use std::time::{Duration, Instant};

use proconsul_testkit::{request, TestAgent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_put_get_delete_with_consul_shapes() {
    let a = TestAgent::dev().await;
    let r = a.put("/v1/kv/app/color?flags=42", b"blue").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "true");

    let r = a.get("/v1/kv/app/color").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.header("X-Consul-KnownLeader"), Some("true"));
    assert_eq!(r.header("X-Consul-LastContact"), Some("0"));
    assert_eq!(r.header("X-Consul-Effective-Consistency"), Some("leader"));
    assert_eq!(r.header("X-Consul-Query-Backend"), Some("blocking-query"));
    assert_eq!(r.header("X-Consul-Default-ACL-Policy"), Some("allow"));
    let v = r.json();
    let e = &v[0];
    assert_eq!(e["Key"], "app/color");
    assert_eq!(e["Value"], "Ymx1ZQ==");
    assert_eq!(e["Flags"], 42);
    assert_eq!(e["LockIndex"], 0);
    assert!(e["CreateIndex"].as_u64().unwrap() > 0);
    assert_eq!(e["CreateIndex"], e["ModifyIndex"]);
    assert_eq!(r.index(), e["ModifyIndex"].as_u64().unwrap());
    assert!(e.get("Session").is_none());

    // raw
    let r = a.get("/v1/kv/app/color?raw").await;
    assert_eq!(r.body, b"blue");

    // An empty body stores no value: `null`, as Go's nil slice; `?raw` is an empty body.
    assert_eq!(a.put("/v1/kv/app/empty", b"").await.text(), "true");
    assert_eq!(
        a.get_json("/v1/kv/app/empty").await[0]["Value"],
        serde_json::Value::Null
    );
    let r = a.get("/v1/kv/app/empty?raw").await;
    assert_eq!((r.status, r.body.len()), (200, 0));
    a.delete("/v1/kv/app/empty").await;

    // a second key, then recurse and keys
    a.put("/v1/kv/app/size", b"10").await;
    a.put("/v1/kv/app/sub/deep", b"x").await;
    let r = a.get("/v1/kv/app?recurse").await;
    let keys: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, vec!["app/color", "app/size", "app/sub/deep"]);
    let r = a.get("/v1/kv/app/?keys&separator=/").await;
    assert_eq!(
        r.json(),
        serde_json::json!(["app/color", "app/size", "app/sub/"])
    );
    let r = a.get("/v1/kv/?keys").await;
    assert_eq!(r.json().as_array().unwrap().len(), 3);

    // missing key: 404 with an index
    let r = a.get("/v1/kv/nope").await;
    assert_eq!(r.status, 404);
    assert!(r.index() >= 1);
    assert!(r.body.is_empty());

    // cas: 0 means create-only
    let r = a.put("/v1/kv/app/color?cas=0", b"red").await;
    assert_eq!(r.text(), "false");
    let idx = a.get_json("/v1/kv/app/color").await[0]["ModifyIndex"]
        .as_u64()
        .unwrap();
    let r = a
        .put(&format!("/v1/kv/app/color?cas={}", idx + 100), b"red")
        .await;
    assert_eq!(r.text(), "false");
    let r = a.put(&format!("/v1/kv/app/color?cas={idx}"), b"red").await;
    assert_eq!(r.text(), "true");
    assert_eq!(a.get("/v1/kv/app/color?raw").await.body, b"red");

    // delete one, delete-cas, delete the tree
    assert_eq!(a.delete("/v1/kv/app/size").await.text(), "true");
    assert_eq!(a.get("/v1/kv/app/size").await.status, 404);
    assert_eq!(a.delete("/v1/kv/app/color?cas=1").await.text(), "false");
    assert_eq!(a.delete("/v1/kv/app?recurse").await.text(), "true");
    assert_eq!(a.get("/v1/kv/app?recurse").await.status, 404);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_bad_input_changes_nothing() {
    let a = TestAgent::dev().await;
    a.put("/v1/kv/k", b"v").await;
    let before = a.get_json("/v1/kv/k").await;

    // oversize value: 413, Consul's text, nothing written
    let big = vec![b'x'; 512 * 1024 + 1];
    let r = a.put("/v1/kv/k", &big).await;
    assert_eq!(r.status, 413);
    assert!(
        r.text().contains("too large, max size: 524288 bytes"),
        "{}",
        r.text()
    );
    assert_eq!(a.get_json("/v1/kv/k").await, before);

    // bad cas / flags / index / wait / consistency
    let r = a.put("/v1/kv/k?cas=abc", b"z").await;
    assert_eq!(r.status, 400);
    let r = a.put("/v1/kv/k?flags=-1", b"z").await;
    assert_eq!(r.status, 400);
    let r = a.put("/v1/kv/k?cas=1&acquire=x", b"z").await;
    assert_eq!(r.status, 400);
    assert!(r.text().starts_with("Conflicting flags"), "{}", r.text());
    let r = a.get("/v1/kv/k?index=abc").await;
    assert_eq!((r.status, r.text().as_str()), (400, "Invalid index"));
    let r = a.get("/v1/kv/k?index=1&wait=10parsecs").await;
    assert_eq!((r.status, r.text().as_str()), (400, "Invalid wait time"));
    let r = a.get("/v1/kv/k?stale&consistent").await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("conflicting semantics"));
    // missing key name
    let r = a.put("/v1/kv/", b"z").await;
    assert_eq!((r.status, r.text().as_str()), (400, "Missing key name"));
    let r = a.delete("/v1/kv/").await;
    assert_eq!(r.status, 400);
    // path traversal
    let r = a.put("/v1/kv/a/../b", b"z").await;
    assert_ne!(r.status, 200);

    assert_eq!(a.get_json("/v1/kv/k").await, before);
    assert_eq!(a.get_json("/v1/kv/?keys").await, serde_json::json!(["k"]));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_consistent_reads() {
    let a = TestAgent::dev().await;
    a.put("/v1/kv/s", b"1").await;
    let r = a.get("/v1/kv/s?stale").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Consul-Effective-Consistency"), Some("stale"));
    let r = a.get("/v1/kv/s?consistent").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("X-Consul-Effective-Consistency"),
        Some("consistent")
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_query_returns_on_write_or_after_wait() {
    let a = TestAgent::dev().await;
    a.put("/v1/kv/app/x", b"1").await;
    let idx = a.get("/v1/kv/app?recurse").await.index();

    // times out after `wait` with the same index
    let t0 = Instant::now();
    let r = a
        .get(&format!("/v1/kv/app?recurse&index={idx}&wait=300ms"))
        .await;
    let took = t0.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(r.index(), idx);
    assert!(
        took >= Duration::from_millis(290),
        "returned early: {took:?}"
    );

    // an unrelated write does not wake it; a write under the prefix does
    let http = a.http;
    let waiter = tokio::spawn(async move {
        request(
            http,
            "GET",
            &format!("/v1/kv/app?recurse&index={idx}&wait=10s"),
            &[],
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.put("/v1/kv/other", b"o").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished(), "woke on an unrelated key");
    let w = a.put("/v1/kv/app/y", b"2").await;
    let r = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("woke")
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(r.index() > idx);
    assert_eq!(r.index(), w.index());
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_blocking_queries_wake_on_one_write() {
    // All from one client IP: raise the per-client connection limit (default 200) for this.
    let a = TestAgent::start_with(proconsul_testkit::dev_flags(), |c| {
        c.http_max_conns_per_client = 2000
    })
    .await;
    a.put("/v1/kv/hot", b"0").await;
    let idx = a.get("/v1/kv/hot").await.index();
    let http = a.http;
    let mut waiters = Vec::new();
    for _ in 0..1000 {
        waiters.push(tokio::spawn(async move {
            request(
                http,
                "GET",
                &format!("/v1/kv/hot?index={idx}&wait=60s"),
                &[],
            )
            .await
        }));
    }
    // Let every query reach its wait (they answer nothing until the write).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        waiters.iter().all(|w| !w.is_finished()),
        "a blocking query returned early"
    );
    let w = a.put("/v1/kv/hot", b"1").await;
    let t0 = Instant::now();
    for h in waiters {
        let r = tokio::time::timeout(Duration::from_secs(20), h)
            .await
            .expect("woke")
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.index(), w.index());
    }
    eprintln!("1000 waiters answered {:?} after the write", t0.elapsed());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_commits_or_rolls_back() {
    let a = TestAgent::dev().await;
    let body = br#"[{"KV":{"Verb":"set","Key":"t/a","Value":"YQ=="}},{"KV":{"Verb":"set","Key":"t/b","Value":"Yg=="}},{"KV":{"Verb":"get","Key":"t/a"}}]"#;
    let r = a.put("/v1/txn", body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert!(v["Errors"].is_null());
    let results = v["Results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[2]["KV"]["Key"], "t/a");
    assert_eq!(results[2]["KV"]["Value"], "YQ==");

    // a failing check rolls the whole thing back with 409
    let body = br#"[{"KV":{"Verb":"set","Key":"t/c","Value":"Yw=="}},{"KV":{"Verb":"check-not-exists","Key":"t/a"}}]"#;
    let r = a.put("/v1/txn", body).await;
    assert_eq!(r.status, 409, "{}", r.text());
    let v = r.json();
    assert!(v["Results"].is_null());
    assert_eq!(v["Errors"][0]["OpIndex"], 1);
    assert!(!v["Errors"][0]["What"].as_str().unwrap().is_empty());
    assert_eq!(a.get("/v1/kv/t/c").await.status, 404);

    // lowercase keys (py-consul style) work
    let r = a
        .put(
            "/v1/txn",
            br#"[{"kv":{"verb":"set","key":"t/d","value":"ZA=="}}]"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(a.get("/v1/kv/t/d?raw").await.body, b"d");

    // too many ops, unknown verb, malformed JSON: refused, nothing changes
    let ops: Vec<String> = (0..65)
        .map(|i| format!(r#"{{"KV":{{"Verb":"set","Key":"many/{i}","Value":""}}}}"#))
        .collect();
    let r = a
        .put("/v1/txn", format!("[{}]", ops.join(",")).as_bytes())
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("too many operations"));
    let r = a
        .put("/v1/txn", br#"[{"KV":{"Verb":"explode","Key":"x"}}]"#)
        .await;
    assert_eq!(r.status, 400);
    let r = a.put("/v1/txn", b"[{not json").await;
    assert_eq!(r.status, 400);
    assert_eq!(a.get("/v1/kv/many?recurse").await.status, 404);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_on_one_key_ignores_other_keys() {
    let a = TestAgent::dev().await;
    a.put("/v1/kv/one", b"1").await;
    a.put("/v1/kv/two", b"2").await;
    let r = a.get("/v1/kv/one").await;
    // the key's own ModifyIndex, not the table's
    assert_eq!(r.index(), r.json()[0]["ModifyIndex"].as_u64().unwrap());
    let idx = r.index();
    let http = a.http;
    let waiter = tokio::spawn(async move {
        request(
            http,
            "GET",
            &format!("/v1/kv/one?index={idx}&wait=10s"),
            &[],
        )
        .await
    });
    a.put("/v1/kv/two", b"3").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiter.is_finished(),
        "a write to another key woke a single-key query"
    );
    a.put("/v1/kv/one", b"4").await;
    let r = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.json()[0]["Value"], "NA==");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_client_are_bounded() {
    let a = TestAgent::start_with(proconsul_testkit::dev_flags(), |c| {
        c.http_max_conns_per_client = 5
    })
    .await;
    // five idle connections are admitted ...
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(tokio::net::TcpStream::connect(a.http).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ... the sixth gets Consul's 429 before its request is read, and is closed
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        use tokio::io::AsyncReadExt;
        let mut s = tokio::net::TcpStream::connect(a.http).await.unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        buf
    })
    .await
    .expect("over-limit connection closed promptly");
    assert_eq!(
        String::from_utf8_lossy(&r),
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nContent-Length: 81\r\n\
         Connection: close\r\n\r\nYour IP is issuing too many concurrent connections, please \
         rate limit your calls\n"
    );
    // once the held ones close, requests are served again
    drop(held);
    proconsul_testkit::wait_until(Duration::from_secs(5), "slots freed", || async {
        request(a.http, "GET", "/v1/status/leader", &[])
            .await
            .status
            == 200
    })
    .await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_not_held_by_a_blocking_query() {
    let a = TestAgent::dev().await;
    a.put("/v1/kv/w", b"1").await;
    let idx = a.get("/v1/kv/w").await.index();
    let http = a.http;
    let waiter = tokio::spawn(async move {
        request(http, "GET", &format!("/v1/kv/w?index={idx}&wait=5m"), &[]).await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), a.stop())
        .await
        .expect("agent stopped promptly");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        t0.elapsed()
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), waiter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_save_and_restore() {
    let a = TestAgent::dev().await;
    assert_eq!(a.put("/v1/kv/keep", b"1").await.text(), "true");
    let r = a.get("/v1/snapshot").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("X-Consul-Index").is_some());
    assert_eq!(r.header("X-Consul-KnownLeader"), Some("true"));
    assert_eq!(r.header("X-Consul-LastContact"), Some("0"));
    let archive = r.body.clone();
    let (meta, _) = proconsul_types::archive::read(&archive).expect("a valid archive");
    assert!(meta.index > 0);
    // Change things, then restore: the snapshot's state comes back.
    a.delete("/v1/kv/keep").await;
    a.put("/v1/kv/later", b"2").await;
    let r = a.put("/v1/snapshot", &archive).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(a.get("/v1/kv/keep?raw").await.text(), "1");
    assert_eq!(a.get("/v1/kv/later").await.status, 404);
    // Writes after a restore get indexes above it.
    let r = a.put("/v1/kv/after", b"3").await;
    let idx: u64 = r
        .header("X-Consul-Index")
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    let listed = a.get_json("/v1/kv/after").await;
    assert!(
        listed[0]["ModifyIndex"].as_u64().unwrap() > meta.index,
        "{listed} {idx}"
    );
    // A tampered archive is refused and changes nothing.
    let mut bad = archive.clone();
    let n = bad.len();
    bad[n / 2] ^= 0xff;
    let r = a.put("/v1/snapshot", &bad).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(a.get("/v1/kv/after?raw").await.text(), "3");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_with_catalog_and_session_operations() {
    let a = TestAgent::dev().await;
    a.wait_registered().await;
    let body = serde_json::json!([
        {"Node": {"Verb": "set", "Node": {"Node": "tx-node", "Address": "10.9.9.9"}}},
        {"Service": {"Verb": "set", "Node": "tx-node",
                     "Service": {"ID": "tx-web", "Service": "web", "Port": 80}}},
        {"Check": {"Verb": "set", "Check": {"Node": "tx-node", "CheckID": "tx-check",
                   "Name": "alive", "Status": "passing", "ServiceID": "tx-web"}}},
        {"KV": {"Verb": "set", "Key": "tx/k", "Value": "dg=="}}
    ]);
    let r = a.put("/v1/txn", body.to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let results = v["Results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["Node"]["Node"], "tx-node");
    assert_eq!(results[1]["Service"]["ID"], "tx-web");
    assert_eq!(results[2]["Check"]["Status"], "passing");
    assert!(results[0].get("KV").is_none() && results[3].get("Node").is_none());
    let svc = a.get_json("/v1/catalog/service/web").await;
    assert_eq!(svc[0]["Node"], "tx-node");
    let node_index = results[0]["Node"]["ModifyIndex"].as_u64().unwrap();

    // A stale cas rolls the whole transaction back: the delete before it did not happen.
    let body = serde_json::json!([
        {"Check": {"Verb": "delete", "Check": {"Node": "tx-node", "CheckID": "tx-check"}}},
        {"Node": {"Verb": "cas", "Node": {"Node": "tx-node", "Address": "10.9.9.8",
                  "ModifyIndex": node_index + 1000}}},
        {"Service": {"Verb": "get", "Node": "tx-node", "Service": {"ID": "nope"}}}
    ]);
    let r = a.put("/v1/txn", body.to_string().as_bytes()).await;
    assert_eq!(r.status, 409, "{}", r.text());
    let errs = r.json()["Errors"].clone();
    assert_eq!(errs[0]["OpIndex"], 1);
    assert_eq!(
        errs[0]["What"],
        "failed to set node \"tx-node\", index is stale"
    );
    assert_eq!(
        errs[1]["What"],
        "service \"nope\" on node \"tx-node\" doesn't exist"
    );
    assert_eq!(
        a.get_json("/v1/health/node/tx-node")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The right index: the node moves; delete the service; a session goes with "delete".
    let sess = a.put("/v1/session/create", b"{}").await.json()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let body = serde_json::json!([
        {"Node": {"Verb": "cas", "Node": {"Node": "tx-node", "Address": "10.9.9.8",
                  "ModifyIndex": node_index}}},
        {"Service": {"Verb": "delete", "Node": "tx-node", "Service": {"ID": "tx-web"}}},
        {"Session": {"Verb": "delete", "Session": {"ID": sess}}}
    ]);
    let r = a.put("/v1/txn", body.to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        a.get_json("/v1/catalog/node/tx-node").await["Node"]["Address"],
        "10.9.9.8"
    );
    assert_eq!(
        a.get_json("/v1/catalog/service/web").await,
        serde_json::json!([])
    );
    assert_eq!(
        a.get_json(&format!("/v1/session/info/{sess}")).await,
        serde_json::json!([])
    );

    // An operation must hold exactly one kind.
    let r = a.put("/v1/txn", br#"[{}]"#).await;
    assert_eq!(r.status, 400);
    let r = a
        .put(
            "/v1/txn",
            br#"[{"Session": {"Verb": "renew", "Session": {"ID": "x"}}}]"#,
        )
        .await;
    assert_eq!(r.status, 400);
    a.stop().await;
}
