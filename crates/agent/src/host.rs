//! `/v1/agent/host`: what Consul reports of the machine (its `debug.CollectHostInfo`, fed by
//! gopsutil): `Host`, `Memory`, `CPU`, `Disk` (of `/`), `CollectionTime`, `Errors`, with
//! gopsutil's camelCase field names. Read from `/proc`, `/etc` and `statvfs`; a part that
//! cannot be read is left out and its error listed, as Consul does.

use serde_json::{json, Map, Value};

/// Collect the host's figures now.
pub(crate) fn collect() -> Value {
    let mut errors = Vec::new();
    let mut part = |name: &str, r: Result<Value, String>| match r {
        Ok(v) => v,
        Err(e) => {
            errors.push(Value::String(format!("{name}: {e}")));
            Value::Null
        }
    };
    let memory = part("memory", memory());
    let cpu = part("cpu", cpus());
    let host = part("host", host());
    let disk = part("disk", disk("/"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    json!({
        "Memory": memory,
        "CPU": cpu,
        "Host": host,
        "Disk": disk,
        "CollectionTime": now,
        "Errors": errors,
    })
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

/// `/proc/meminfo` in bytes, keyed by its own names.
fn meminfo() -> Result<std::collections::HashMap<String, u64>, String> {
    let text = read("/proc/meminfo")?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let (k, rest) = l.split_once(':')?;
            let mut parts = rest.split_whitespace();
            let n: u64 = parts.next()?.parse().ok()?;
            let scale = if parts.next() == Some("kB") { 1024 } else { 1 };
            Some((k.to_string(), n * scale))
        })
        .collect())
}

fn memory() -> Result<Value, String> {
    let m = meminfo()?;
    let g = |k: &str| m.get(k).copied().unwrap_or(0);
    let total = g("MemTotal");
    let free = g("MemFree");
    let buffers = g("Buffers");
    let cached = g("Cached") + g("SReclaimable");
    let available = m
        .get("MemAvailable")
        .copied()
        .unwrap_or(free + buffers + cached);
    let used = total.saturating_sub(free + buffers + cached);
    let pct = |part: u64| {
        if total == 0 {
            0.0
        } else {
            part as f64 / total as f64 * 100.0
        }
    };
    Ok(json!({
        "total": total,
        "available": available,
        "used": used,
        "usedPercent": pct(used),
        "free": free,
        "active": g("Active"),
        "inactive": g("Inactive"),
        "wired": 0,
        "laundry": 0,
        "buffers": buffers,
        "cached": cached,
        "writeBack": g("Writeback"),
        "dirty": g("Dirty"),
        "writeBackTmp": g("WritebackTmp"),
        "shared": g("Shmem"),
        "slab": g("Slab"),
        "sreclaimable": g("SReclaimable"),
        "sunreclaim": g("SUnreclaim"),
        "pageTables": g("PageTables"),
        "swapCached": g("SwapCached"),
        "commitLimit": g("CommitLimit"),
        "committedAS": g("Committed_AS"),
        "highTotal": g("HighTotal"),
        "highFree": g("HighFree"),
        "lowTotal": g("LowTotal"),
        "lowFree": g("LowFree"),
        "swapTotal": g("SwapTotal"),
        "swapFree": g("SwapFree"),
        "mapped": g("Mapped"),
        "vmallocTotal": g("VmallocTotal"),
        "vmallocUsed": g("VmallocUsed"),
        "vmallocChunk": g("VmallocChunk"),
        "hugePagesTotal": g("HugePages_Total"),
        "hugePagesFree": g("HugePages_Free"),
        "hugePagesRsvd": g("HugePages_Rsvd"),
        "hugePagesSurp": g("HugePages_Surp"),
        "hugePageSize": g("Hugepagesize"),
        "anonHugePages": g("AnonHugePages"),
    }))
}

fn cpus() -> Result<Value, String> {
    let text = read("/proc/cpuinfo")?;
    let mut out = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let fields: Map<String, Value> = block
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((k.trim().to_string(), Value::String(v.trim().to_string())))
            })
            .collect();
        let s = |k: &str| {
            fields
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let n = |k: &str| s(k).parse::<i64>().unwrap_or(0);
        out.push(json!({
            "cpu": n("processor"),
            "vendorId": s("vendor_id"),
            "family": s("cpu family"),
            "model": s("model"),
            "stepping": n("stepping"),
            "physicalId": s("physical id"),
            "coreId": s("core id"),
            "cores": 1,
            "modelName": s("model name"),
            "mhz": s("cpu MHz").parse::<f64>().unwrap_or(0.0),
            "cacheSize": s("cache size").trim_end_matches(" KB").parse::<i64>().unwrap_or(0),
            "flags": s("flags").split_whitespace().collect::<Vec<_>>(),
            "microcode": s("microcode"),
        }));
    }
    Ok(Value::Array(out))
}

/// `KEY=value` lines of `/etc/os-release`.
fn os_release() -> std::collections::HashMap<String, String> {
    read("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.to_string(), v.trim_matches('"').to_string()))
        })
        .collect()
}

fn host() -> Result<Value, String> {
    let uptime: f64 = read("/proc/uptime")?
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("/proc/uptime: unreadable")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let procs = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .count()
        })
        .unwrap_or(0);
    let os = os_release();
    let platform = os.get("ID").cloned().unwrap_or_default();
    let family = match platform.as_str() {
        "debian" | "ubuntu" | "linuxmint" | "raspbian" => "debian",
        "rhel" | "centos" | "fedora" | "rocky" | "almalinux" | "amzn" => "rhel",
        "alpine" => "alpine",
        other => other,
    };
    let hostid = read("/etc/machine-id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let hostname = {
        use proconsul_config::HostInfo;
        proconsul_config::SystemHost.hostname().unwrap_or_default()
    };
    Ok(json!({
        "hostname": hostname,
        "uptime": uptime as u64,
        "bootTime": now.saturating_sub(uptime as u64),
        "procs": procs,
        "os": std::env::consts::OS,
        "platform": platform,
        "platformFamily": family,
        "platformVersion": os.get("VERSION_ID").cloned().unwrap_or_default(),
        "kernelVersion": read("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default(),
        "kernelArch": std::env::consts::ARCH,
        "virtualizationSystem": "",
        "virtualizationRole": "",
        "hostid": hostid,
    }))
}

fn disk(path: &str) -> Result<Value, String> {
    let c = std::ffi::CString::new(path).map_err(|e| e.to_string())?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(format!(
            "statvfs {path}: {}",
            std::io::Error::last_os_error()
        ));
    }
    let bsize = st.f_frsize as u64;
    let total = st.f_blocks as u64 * bsize;
    let free = st.f_bavail as u64 * bsize;
    let used = (st.f_blocks as u64 - st.f_bfree as u64) * bsize;
    let pct = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            a as f64 / b as f64 * 100.0
        }
    };
    let inodes_total = st.f_files as u64;
    let inodes_free = st.f_ffree as u64;
    let inodes_used = inodes_total.saturating_sub(inodes_free);
    Ok(json!({
        "path": path,
        "fstype": "",
        "total": total,
        "free": free,
        "used": used,
        "usedPercent": pct(used, used + free),
        "inodesTotal": inodes_total,
        "inodesUsed": inodes_used,
        "inodesFree": inodes_free,
        "inodesUsedPercent": pct(inodes_used, inodes_total),
    }))
}

/// One CPU's counters from `/proc/stat` (clock ticks since boot).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct CpuTimes {
    user: u64,
    system: u64,
    idle: u64,
    iowait: u64,
    total: u64,
}

/// The `cpuN` lines of `/proc/stat` (the per-CPU ones; the summed `cpu` line is skipped).
fn cpu_times(stat: &str) -> Vec<(String, CpuTimes)> {
    stat.lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?.to_string();
            let n: Vec<u64> = f.filter_map(|x| x.parse().ok()).collect();
            // user nice system idle iowait irq softirq steal (guest time is inside user).
            let get = |i: usize| n.get(i).copied().unwrap_or(0);
            let total = (0..8).map(get).sum();
            Some((
                name,
                CpuTimes {
                    user: get(0) + get(1),
                    system: get(2),
                    idle: get(3),
                    iowait: get(4),
                    total,
                },
            ))
        })
        .collect()
}

/// Per-CPU percentages between two readings: (user, system, idle, iowait, total busy).
fn cpu_percent(before: CpuTimes, now: CpuTimes) -> Option<(f64, f64, f64, f64, f64)> {
    let span = now.total.checked_sub(before.total).filter(|s| *s > 0)? as f64;
    let pct = |a: u64, b: u64| a.saturating_sub(b) as f64 / span * 100.0;
    let idle = pct(now.idle, before.idle);
    Some((
        pct(now.user, before.user),
        pct(now.system, before.system),
        idle,
        pct(now.iowait, before.iowait),
        100.0 - idle,
    ))
}

/// `telemetry.enable_host_metrics`: Consul's `consul.host.*` gauges (its `hoststats`
/// collector), set at every gauge interval. CPU figures are percentages over the interval, so
/// they start at the second reading.
#[derive(Debug, Default)]
pub(crate) struct HostMetrics {
    last_cpu: std::collections::HashMap<String, CpuTimes>,
}

impl HostMetrics {
    pub(crate) fn emit(&mut self, data_dir: Option<&std::path::Path>) {
        let gauge = |name: &'static str, v: f64| metrics::gauge!(name).set(v);
        if let Ok(m) = memory() {
            let n = |k: &str| m.get(k).and_then(Value::as_f64).unwrap_or(0.0);
            gauge("consul.host.memory.total", n("total"));
            gauge("consul.host.memory.available", n("available"));
            gauge("consul.host.memory.used", n("used"));
            gauge("consul.host.memory.used_percent", n("usedPercent"));
            gauge("consul.host.memory.free", n("free"));
        }
        if let Ok(stat) = read("/proc/stat") {
            for (cpu, now) in cpu_times(&stat) {
                let before = self.last_cpu.insert(cpu.clone(), now);
                let Some((user, system, idle, iowait, total)) =
                    before.and_then(|b| cpu_percent(b, now))
                else {
                    continue;
                };
                for (name, v) in [
                    ("consul.host.cpu.total", total),
                    ("consul.host.cpu.user", user),
                    ("consul.host.cpu.idle", idle),
                    ("consul.host.cpu.iowait", iowait),
                    ("consul.host.cpu.system", system),
                ] {
                    metrics::gauge!(name, "cpu" => cpu.clone()).set(v);
                }
            }
        }
        if let Some(dir) = data_dir.and_then(|d| d.to_str()) {
            if let Ok(d) = disk(dir) {
                let n = |k: &str| d.get(k).and_then(Value::as_f64).unwrap_or(0.0);
                let path = dir.to_string();
                for (name, v) in [
                    ("consul.host.disk.size", n("total")),
                    ("consul.host.disk.used", n("used")),
                    ("consul.host.disk.available", n("free")),
                    ("consul.host.disk.used_percent", n("usedPercent")),
                    ("consul.host.disk.inodes_percent", n("inodesUsedPercent")),
                ] {
                    metrics::gauge!(name, "path" => path.clone()).set(v);
                }
            }
        }
        if let Ok(h) = host() {
            gauge(
                "consul.host.uptime",
                h.get("uptime").and_then(Value::as_f64).unwrap_or(0.0),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_percentages_over_an_interval() {
        let before = "cpu  10 0 10 80 0 0 0 0 0 0\ncpu0 10 0 10 80 0 0 0 0 0 0\nintr 5\n";
        let after = "cpu  40 0 20 130 10 0 0 0 0 0\ncpu0 40 0 20 130 10 0 0 0 0 0\n";
        let b = cpu_times(before);
        let a = cpu_times(after);
        assert_eq!(b.len(), 1, "the summed `cpu` line is skipped");
        assert_eq!(a[0].0, "cpu0");
        // 100 ticks passed: 30 user, 10 system, 50 idle, 10 iowait.
        let (user, system, idle, iowait, total) = cpu_percent(b[0].1, a[0].1).unwrap();
        assert_eq!(
            (user, system, idle, iowait, total),
            (30.0, 10.0, 50.0, 10.0, 50.0)
        );
        assert!(cpu_percent(a[0].1, a[0].1).is_none(), "no time passed");
    }
}
