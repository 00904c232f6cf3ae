//! Remote execution (`proconsul exec`), Consul's protocol over KV, sessions and user events.
//!
//! The CLI writes a job spec to `<prefix>/<session>/job` and fires the user event `_rexec`
//! with `{"Prefix": ..., "Session": ...}`. An agent that accepts it (only with
//! `disable_remote_exec = false`) reads the job, writes `<prefix>/<session>/<node>/ack`, runs
//! the command, uploads its output in chunks of at most 4 KiB to `.../<node>/out/<%05x seq>`
//! (a chunk goes out when full or after 500 ms without output; an empty chunk is a heartbeat
//! after the job's `Wait` without any), and finally writes the exit code to `.../<node>/exit`.
//! Every key is written with `?acquire=<session>`, so once the CLI destroys its session no
//! agent can write into the job any more; an agent whose upload fails stops the command.
//!
//! Bounds: at most [`MAX_RUNNING`] jobs run at once (more are refused with a log line), one
//! job uploads at most [`MAX_OUTPUT`] bytes (the rest is read and dropped), and a job spec
//! larger than the KV value limit cannot exist in the first place.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use proconsul_types::{
    Consistency, KvGet, KvWriteVerb, QueryOptions, UserEvent, WriteRequest, WriteResponse,
};
use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::Agent;

/// The user event that announces a job.
pub(crate) const EVENT_NAME: &str = "_rexec";
/// Output chunk size (Consul's `remoteExecOutputSize`).
const CHUNK: usize = 4 * 1024;
/// Upload a partial chunk after this long without output (`remoteExecOutputDeadline`).
const IDLE_FLUSH: Duration = Duration::from_millis(500);
/// Most output one job uploads.
pub(crate) const MAX_OUTPUT: usize = 1024 * 1024;
/// Most jobs running at once on one agent.
pub(crate) const MAX_RUNNING: usize = 16;
/// Heartbeat interval when the spec gives none (the CLI always sends its `-wait`).
const DEFAULT_WAIT: Duration = Duration::from_secs(2);

/// The event payload.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ExecEvent {
    prefix: String,
    session: String,
}

/// The job spec the CLI uploads (Go's JSON: bytes are base64, a duration is nanoseconds).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct ExecSpec {
    pub command: String,
    pub args: Option<Vec<String>>,
    pub script: Option<String>,
    pub wait: i64,
}

/// Remote exec jobs running now (bounded by [`MAX_RUNNING`]).
#[derive(Default)]
pub(crate) struct RemoteExecs {
    running: AtomicUsize,
}

/// Counts a running job for [`MAX_RUNNING`] until dropped.
struct RunningGuard(Agent);
impl Drop for RunningGuard {
    fn drop(&mut self) {
        let running = &self.0.inner.remote_exec.running;
        running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Splits output into upload-sized chunks and counts what was kept, so the bounds are testable
/// without a process.
#[derive(Debug, Default)]
pub(crate) struct Chunker {
    buf: Vec<u8>,
    uploaded: usize,
    pub dropped: usize,
}

impl Chunker {
    /// Take in output; returns the full chunks ready to upload.
    pub fn push(&mut self, mut data: &[u8]) -> Vec<Vec<u8>> {
        let room = MAX_OUTPUT.saturating_sub(self.uploaded + self.buf.len());
        if data.len() > room {
            self.dropped += data.len() - room;
            data = &data[..room];
        }
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        while self.buf.len() >= CHUNK {
            let rest = self.buf.split_off(CHUNK);
            let full = std::mem::replace(&mut self.buf, rest);
            self.uploaded += full.len();
            out.push(full);
        }
        out
    }

    /// What is buffered, if anything (an idle flush, or the end).
    pub fn flush(&mut self) -> Option<Vec<u8>> {
        if self.buf.is_empty() {
            return None;
        }
        self.uploaded += self.buf.len();
        Some(std::mem::take(&mut self.buf))
    }
}

impl Agent {
    /// A `_rexec` event passed the filters: run it unless remote exec is disabled.
    pub(crate) fn ingest_remote_exec(&self, ev: UserEvent) {
        if self.config().disable_remote_exec {
            tracing::info!(target: "agent", event_name = %ev.name, event_id = %ev.id, "ignoring remote exec event, disabled.");
            return;
        }
        let running = &self.inner.remote_exec.running;
        if running.fetch_add(1, Ordering::SeqCst) >= MAX_RUNNING {
            running.fetch_sub(1, Ordering::SeqCst);
            tracing::error!(target: "agent", event_id = %ev.id, limit = MAX_RUNNING, "too many remote exec jobs running; ignoring this one");
            return;
        }
        let a = self.clone();
        self.inner.tasks.spawn(async move {
            let _guard = RunningGuard(a.clone());
            tokio::select! {
                _ = a.inner.shutdown.cancelled() => {}
                _ = a.handle_remote_exec(ev) => {}
            }
        });
    }

    async fn handle_remote_exec(&self, ev: UserEvent) {
        tracing::debug!(target: "agent", event_id = %ev.id, "received remote exec event");
        let payload = ev.payload.unwrap_or_default();
        let event: ExecEvent = match serde_json::from_slice(&payload) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(target: "agent", error = %e, "failed to decode remote exec event");
                return;
            }
        };
        let Some(spec) = self.remote_exec_spec(&event).await else {
            return;
        };
        if let Err(e) = self.remote_exec_write(&event, "ack", None).await {
            tracing::error!(target: "agent", error = %e, "failed to ack remote exec job");
            return;
        }
        let code = self.remote_exec_run(&event, &spec).await;
        if let Err(e) = self
            .remote_exec_write(&event, "exit", Some(code.to_string().into_bytes()))
            .await
        {
            tracing::error!(target: "agent", error = %e, "failed to write exit code for remote exec job");
        }
    }

    /// Read the job: a stale read first, then a consistent one if that found nothing.
    async fn remote_exec_spec(&self, event: &ExecEvent) -> Option<ExecSpec> {
        let key = format!("{}/{}/job", event.prefix, event.session);
        for consistency in [Consistency::Stale, Consistency::Default] {
            let opts = QueryOptions {
                consistency,
                ..QueryOptions::default()
            };
            let entry = match self.query(KvGet { key: key.clone() }, opts).await {
                Ok((_, e)) => e,
                Err(e) => {
                    tracing::error!(target: "agent", error = %e, "failed to get remote exec job");
                    return None;
                }
            };
            if let Some(entry) = entry {
                return match serde_json::from_slice(entry.value.as_deref().unwrap_or_default()) {
                    Ok(spec) => Some(spec),
                    Err(e) => {
                        tracing::error!(target: "agent", error = %e, "failed to decode remote exec spec");
                        None
                    }
                };
            }
            tracing::debug!(target: "agent", "trying consistent fetch of remote exec job spec");
        }
        tracing::debug!(target: "agent", "remote exec aborted, job spec missing");
        None
    }

    /// Write `<prefix>/<session>/<node>/<suffix>` holding the job's session.
    async fn remote_exec_write(
        &self,
        event: &ExecEvent,
        suffix: &str,
        value: Option<Vec<u8>>,
    ) -> Result<(), String> {
        let key = format!(
            "{}/{}/{}/{suffix}",
            event.prefix, event.session, self.inner.node_name
        );
        let req = WriteRequest::Kv {
            verb: KvWriteVerb::Lock,
            key,
            value,
            flags: 0,
            index: 0,
            session: Some(event.session.clone()),
        };
        match self.rpc_write(req).await {
            Ok((_, WriteResponse::Bool(true))) | Ok((_, WriteResponse::Ok)) => Ok(()),
            Ok(_) => Err("write failed".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Run the job, uploading its output; returns the exit code (255 when it could not run
    /// or an upload failed, like Consul).
    async fn remote_exec_run(&self, event: &ExecEvent, spec: &ExecSpec) -> i32 {
        let mut script_file: Option<ScriptFile> = None;
        let mut cmd = if let Some(args) = spec.args.as_ref().filter(|a| !a.is_empty()) {
            let mut c = tokio::process::Command::new(&args[0]);
            c.args(&args[1..]);
            c
        } else {
            let script = match spec.script.as_deref().filter(|s| !s.is_empty()) {
                Some(b64) => match ScriptFile::write(b64) {
                    Ok(f) => {
                        let p = f.0.display().to_string();
                        script_file = Some(f);
                        p
                    }
                    Err(e) => {
                        tracing::debug!(target: "agent", error = %e, "failed to make tmp file");
                        return 255;
                    }
                },
                None => spec.command.clone(),
            };
            tracing::info!(target: "agent", script = %script, "remote exec");
            shell_command(&script)
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(target: "agent", error = %e, "failed to start remote exec");
                return 255;
            }
        };
        // Both streams into one channel, in arrival order (Consul gives the child one writer).
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut s = stream;
                let mut buf = vec![0u8; CHUNK];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if tx.send(buf[..n].to_vec()).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
        drop(tx);

        let wait = if spec.wait > 0 {
            Duration::from_nanos(spec.wait as u64)
        } else {
            DEFAULT_WAIT
        };
        let mut chunker = Chunker::default();
        let mut seq: u32 = 0;
        let mut idle_deadline: Option<tokio::time::Instant> = None;
        let mut heartbeat = tokio::time::Instant::now() + wait;
        loop {
            let idle = async {
                match idle_deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let mut uploads: Vec<Vec<u8>> = Vec::new();
            let mut done = false;
            tokio::select! {
                chunk = rx.recv() => match chunk {
                    Some(c) => {
                        uploads = chunker.push(&c);
                        idle_deadline = Some(tokio::time::Instant::now() + IDLE_FLUSH);
                    }
                    None => {
                        uploads.extend(chunker.flush());
                        done = true;
                    }
                },
                _ = idle => {
                    uploads.extend(chunker.flush());
                    idle_deadline = None;
                }
                _ = tokio::time::sleep_until(heartbeat) => {
                    uploads.push(Vec::new());
                }
            }
            for out in uploads {
                let suffix = format!("out/{seq:05x}");
                seq += 1;
                if let Err(e) = self.remote_exec_write(event, &suffix, Some(out)).await {
                    tracing::error!(target: "agent", error = %e, "failed to write output for remote exec job");
                    let _ = child.start_kill();
                    return 255;
                }
                heartbeat = tokio::time::Instant::now() + wait;
            }
            if done {
                break;
            }
        }
        if chunker.dropped > 0 {
            tracing::warn!(target: "agent", dropped = chunker.dropped, limit = MAX_OUTPUT, "remote exec output over the limit was not uploaded");
        }
        let code = match child.wait().await {
            Ok(status) => status.code().unwrap_or(1),
            Err(_) => 1,
        };
        drop(script_file);
        code
    }
}

/// `sh -c <script>` (Consul's `exec.Script`: `$SHELL` when set).
fn shell_command(script: &str) -> tokio::process::Command {
    let sh = std::env::var("SHELL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".to_string());
    let mut c = tokio::process::Command::new(sh);
    c.arg("-c").arg(script);
    c
}

/// A job's script spilled to a temporary executable file, removed when dropped.
struct ScriptFile(PathBuf);

impl ScriptFile {
    fn write(b64: &str) -> std::io::Result<ScriptFile> {
        use base64::Engine;
        use std::os::unix::fs::PermissionsExt;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let path = std::env::temp_dir().join(format!("rexec{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, bytes)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o750))?;
        Ok(ScriptFile(path))
    }
}

impl Drop for ScriptFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_chunked_and_bounded() {
        let mut c = Chunker::default();
        assert!(c.push(b"hello").is_empty());
        assert_eq!(c.flush().unwrap(), b"hello");
        assert!(c.flush().is_none());
        let big = vec![b'x'; CHUNK * 2 + 10];
        let chunks = c.push(&big);
        assert_eq!(chunks.len(), 2);
        assert!(chunks.iter().all(|c| c.len() == CHUNK));
        assert_eq!(c.flush().unwrap().len(), 10);
        // Past the limit, output is dropped and counted.
        let huge = vec![b'y'; MAX_OUTPUT];
        let total: usize = c.push(&huge).iter().map(Vec::len).sum::<usize>()
            + c.flush().map(|f| f.len()).unwrap_or(0);
        assert_eq!(total, MAX_OUTPUT - 5 - (CHUNK * 2 + 10));
        assert_eq!(c.dropped, 5 + CHUNK * 2 + 10);
        assert!(c.push(b"more").is_empty() && c.dropped == 5 + CHUNK * 2 + 14);
    }

    #[test]
    fn spec_decodes_consuls_json() {
        let s: ExecSpec =
            serde_json::from_str(r#"{"Command":"uptime","Wait":2000000000}"#).unwrap();
        assert_eq!((s.command.as_str(), s.wait), ("uptime", 2_000_000_000));
        let s: ExecSpec =
            serde_json::from_str(r#"{"Args":["echo","hi"],"Script":null,"Wait":1}"#).unwrap();
        assert_eq!(s.args.unwrap(), vec!["echo", "hi"]);
    }
}
