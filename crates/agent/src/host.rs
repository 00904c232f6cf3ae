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
