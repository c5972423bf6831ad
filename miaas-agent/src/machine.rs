//! What this machine has and how it is doing, measured: OS, logical CPUs, memory,
//! the disk holding the state directory, and live usage for heartbeats.

use std::path::Path;

use sysinfo::{Disks, System};

/// Total and free space (MB) of the disk whose mount point holds `path`.
pub fn disk_of(path: &Path) -> Option<(u64, u64)> {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let disks = Disks::new_with_refreshed_list().ok()?;
    disks
        .iter()
        .filter(|d| path.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| {
            (
                d.total_space() / 1024 / 1024,
                d.available_space() / 1024 / 1024,
            )
        })
}

/// The machine's static facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// `linux`, `macos`, ...
    pub os: String,
    /// Logical CPUs.
    pub cpus: u32,
    /// Total memory in MB.
    pub mem_mb: u64,
}

/// Live usage, measured between two calls of [`Probe::usage`].
pub struct Probe {
    system: Option<System>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Probe")
    }
}

impl Default for Probe {
    fn default() -> Self {
        Self {
            system: System::new().ok(),
        }
    }
}

impl Probe {
    /// OS, logical CPUs and total memory.
    pub fn facts(&mut self) -> Facts {
        let (cpus, mem_mb) = match self.system.as_mut() {
            Some(system) => {
                system.refresh_memory();
                system.refresh_cpu_usage();
                (
                    u32::try_from(system.cpus().len()).unwrap_or(u32::MAX),
                    system.total_memory() / 1024 / 1024,
                )
            }
            None => (0, 0),
        };
        let cpus = if cpus == 0 {
            std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1))
        } else {
            cpus
        };
        Facts {
            os: std::env::consts::OS.to_string(),
            cpus,
            mem_mb,
        }
    }

    /// CPU % since the last call and memory % now.
    pub fn usage(&mut self) -> (f64, f64) {
        let Some(system) = self.system.as_mut() else {
            return (0.0, 0.0);
        };
        system.refresh_cpu_usage();
        system.refresh_memory();
        let cpu = f64::from(system.global_cpu_usage()).clamp(0.0, 100.0);
        let total = system.total_memory().max(1) as f64;
        let mem = (system.used_memory() as f64 / total * 100.0).clamp(0.0, 100.0);
        (cpu, mem)
    }
}

/// This machine's host name, for a default node name.
pub fn host_name() -> Option<String> {
    System::host_name().ok().filter(|n| !n.is_empty())
}

/// The local address of the interface that routes to `server` (no packet is
/// sent: a UDP socket is only connected).
pub fn address_towards(server: &str) -> Option<std::net::IpAddr> {
    use std::net::ToSocketAddrs;
    let authority = server.split_once("://")?.1.split('/').next()?;
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let with_port = if host_port.ends_with(']') || !host_port.contains(':') {
        format!("{host_port}:80")
    } else {
        host_port.to_string()
    };
    let target = with_port.to_socket_addrs().ok()?.next()?;
    let bind = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = std::net::UdpSocket::bind(bind).ok()?;
    socket.connect(target).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_is_measured() {
        let mut probe = Probe::default();
        let facts = probe.facts();
        assert!(facts.cpus >= 1 && facts.mem_mb > 0, "{facts:?}");
        let (cpu, mem) = probe.usage();
        assert!((0.0..=100.0).contains(&cpu) && (0.0..=100.0).contains(&mem));
        let dir = tempfile::tempdir().unwrap();
        let (total, free) = disk_of(dir.path()).expect("a disk");
        assert!(total > 0 && free <= total);
    }

    #[test]
    fn the_address_towards_loopback_is_loopback() {
        let ip = address_towards("http://127.0.0.1:8080").unwrap();
        assert!(ip.is_loopback(), "{ip}");
        assert!(address_towards("not a url").is_none());
    }
}
