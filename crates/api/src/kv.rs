//! `/v1/kv/*`: reads, writes with CAS and locks, deletes.

use proconsul_types::KvEntry;

use crate::client::Method;
use crate::{encode, Client, QueryMeta, QueryOptions, Result};

/// How a KV write is conditioned, as the Go client's `Put`/`CAS`/`Acquire`/`Release` set it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvWrite {
    /// Opaque flags stored with the entry (sent only when non-zero, like Consul's client).
    pub flags: u64,
    /// Check-and-set: write only if the entry's `ModifyIndex` equals this (0 = only if absent).
    pub cas: Option<u64>,
    /// Take the lock with this session.
    pub acquire: Option<String>,
    /// Release the lock held by this session.
    pub release: Option<String>,
}

fn kv_path(key: &str) -> String {
    format!("/v1/kv/{}", encode::path(key.trim_start_matches('/')))
}

impl Client {
    /// One entry, or `None` when the key does not exist (404).
    pub fn kv_get(&self, key: &str, opts: &QueryOptions) -> Result<(Option<KvEntry>, QueryMeta)> {
        let reply = self.get(&kv_path(key), &[], opts)?;
        if reply.status == 404 {
            return Ok((None, reply.meta));
        }
        let reply = reply.require_ok()?;
        let entries: Vec<KvEntry> = reply.json()?;
        Ok((entries.into_iter().next(), reply.meta))
    }

    /// Every entry under `prefix` (`?recurse`); empty when there is none.
    pub fn kv_list(&self, prefix: &str, opts: &QueryOptions) -> Result<(Vec<KvEntry>, QueryMeta)> {
        let reply = self.get(&kv_path(prefix), &[("recurse", String::new())], opts)?;
        if reply.status == 404 {
            return Ok((Vec::new(), reply.meta));
        }
        let reply = reply.require_ok()?;
        Ok((reply.json()?, reply.meta))
    }

    /// Key names under `prefix` (`?keys`), folded at `separator` when it is non-empty.
    pub fn kv_keys(
        &self,
        prefix: &str,
        separator: &str,
        opts: &QueryOptions,
    ) -> Result<(Vec<String>, QueryMeta)> {
        let mut q = vec![("keys", String::new())];
        if !separator.is_empty() {
            q.push(("separator", separator.to_string()));
        }
        let reply = self.get(&kv_path(prefix), &q, opts)?;
        if reply.status == 404 {
            return Ok((Vec::new(), reply.meta));
        }
        let reply = reply.require_ok()?;
        Ok((reply.json()?, reply.meta))
    }

    /// Write `value` at `key`. Returns the agent's verdict: `false` when a CAS, acquire or
    /// release did not take effect.
    pub fn kv_put(&self, key: &str, value: &[u8], write: &KvWrite) -> Result<bool> {
        let mut q = Vec::new();
        if write.flags != 0 {
            q.push(("flags", write.flags.to_string()));
        }
        if let Some(cas) = write.cas {
            q.push(("cas", cas.to_string()));
        }
        if let Some(s) = &write.acquire {
            q.push(("acquire", s.clone()));
        }
        if let Some(s) = &write.release {
            q.push(("release", s.clone()));
        }
        let reply = self
            .request(Method::Put, &kv_path(key), &q, Some(value))?
            .require_ok()?;
        Ok(reply.truthy())
    }

    /// Delete `key` (or every key under it with `recurse`), optionally only if its
    /// `ModifyIndex` equals `cas`. Returns `false` when the CAS did not match.
    pub fn kv_delete(&self, key: &str, recurse: bool, cas: Option<u64>) -> Result<bool> {
        let mut q = Vec::new();
        if recurse {
            q.push(("recurse", String::new()));
        }
        if let Some(cas) = cas {
            q.push(("cas", cas.to_string()));
        }
        let reply = self
            .request(Method::Delete, &kv_path(key), &q, None)?
            .require_ok()?;
        Ok(reply.truthy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testserver::{serve_once, Canned};
    use crate::Config;

    fn client(addr: &str) -> Client {
        Client::new(Config {
            address: addr.to_string(),
            ..Config::default()
        })
        .unwrap()
    }

    #[test]
    fn get_decodes_entry_and_404_is_none() {
        let (addr, req) = serve_once(
            Canned::ok(
                r#"[{"LockIndex":0,"Key":"foo/bar","Flags":3,"Value":"aGVsbG8=","CreateIndex":10,"ModifyIndex":11}]"#,
            )
            .header("X-Consul-Index", "11"),
        );
        let (e, meta) = client(&addr)
            .kv_get("/foo/bar", &QueryOptions::default())
            .unwrap();
        let e = e.unwrap();
        assert_eq!(e.value.as_deref(), Some(&b"hello"[..]));
        assert_eq!((e.flags, e.modify_index, meta.last_index), (3, 11, 11));
        assert!(req
            .join()
            .unwrap()
            .starts_with("GET /v1/kv/foo/bar HTTP/1.1"));

        let (addr, _) = serve_once(Canned::status(404, ""));
        let (e, _) = client(&addr)
            .kv_get("nope", &QueryOptions::default())
            .unwrap();
        assert!(e.is_none());
    }

    #[test]
    fn keys_sends_separator() {
        let (addr, req) = serve_once(Canned::ok(r#"["a/","b"]"#));
        let (keys, _) = client(&addr)
            .kv_keys("", "/", &QueryOptions::stale(true))
            .unwrap();
        assert_eq!(keys, vec!["a/", "b"]);
        assert!(req
            .join()
            .unwrap()
            .starts_with("GET /v1/kv/?keys=&separator=%2F&stale= HTTP/1.1"));
    }

    #[test]
    fn put_with_cas_and_flags() {
        let (addr, req) = serve_once(Canned::ok("false"));
        let ok = client(&addr)
            .kv_put(
                "k",
                b"v1",
                &KvWrite {
                    flags: 42,
                    cas: Some(0),
                    ..KvWrite::default()
                },
            )
            .unwrap();
        assert!(!ok);
        let req = req.join().unwrap();
        assert!(
            req.starts_with("PUT /v1/kv/k?flags=42&cas=0 HTTP/1.1"),
            "{req}"
        );
        assert!(req.ends_with("\r\n\r\nv1"), "{req}");
    }

    #[test]
    fn delete_recurse() {
        let (addr, req) = serve_once(Canned::ok("true"));
        assert!(client(&addr).kv_delete("app/", true, None).unwrap());
        assert!(req
            .join()
            .unwrap()
            .starts_with("DELETE /v1/kv/app/?recurse= HTTP/1.1"));
    }
}
