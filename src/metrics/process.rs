//! The process's own metrics (spec 8.1, system monitoring): CPU time, memory, file descriptors,
//! when it started, the free space under `DATA_DIR`, and which build runs. They are read at each
//! scrape, not kept: a [`Collector`] asks Linux (`/proc/self/stat`, `/proc/self/fd`,
//! `getrlimit`, `statvfs`) when `/metrics` is rendered, so nothing runs between scrapes.
//!
//! The names are the ones every Prometheus client library exposes (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, ...), so the standard dashboards work unchanged. A value the
//! system does not give (no `/proc` outside Linux, a data directory that does not exist) is left
//! out of the exposition rather than shown as a made-up 0.
//!
//! Hand-written because `prometheus-client` has no process collector of its own; the
//! `procfs`-based crates that do would add a dependency tree for six numbers.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The directory whose file system's free space is reported; set once at start-up.
static DATA_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Reports the free space of the file system holding `path` as `data_dir_free_bytes` from now on.
/// The first call wins: a process has one data directory.
pub fn watch_disk(path: &Path) {
    let _ = DATA_DIR.set(path.to_path_buf());
}

/// The fields of `/proc/self/stat` this collector uses, converted to seconds and bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ProcStat {
    pub cpu_seconds: f64,
    /// Seconds since boot.
    pub started_after_boot: f64,
    pub virtual_memory_bytes: u64,
    pub resident_memory_bytes: u64,
}

impl ProcStat {
    /// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may hold spaces
    /// or parentheses itself, so fields are counted from the last `)`.
    pub(super) fn parse(stat: &str, ticks_per_second: f64, page_size: u64) -> Option<ProcStat> {
        let after_name = &stat[stat.rfind(')')? + 1..];
        // Field 3 (state) is the first after the name; `utime` is field 14.
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let field = |number: usize| fields.get(number - 3)?.parse::<u64>().ok();
        Some(ProcStat {
            cpu_seconds: (field(14)? + field(15)?) as f64 / ticks_per_second,
            started_after_boot: field(22)? as f64 / ticks_per_second,
            virtual_memory_bytes: field(23)?,
            resident_memory_bytes: field(24)?.saturating_mul(page_size),
        })
    }
}

fn read_proc_stat() -> Option<ProcStat> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
    if ticks <= 0 || page <= 0 {
        return None;
    }
    ProcStat::parse(&stat, ticks as f64, page as u64)
}

/// The boot time in seconds since the epoch (`btime` of `/proc/stat`).
fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|line| line.strip_prefix("btime "))?.trim().parse().ok()
}

fn open_fds() -> Option<u64> {
    // The directory handle that reads /proc/self/fd is one of the entries: not counted.
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count().saturating_sub(1) as u64)
}

fn max_fds() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given and nothing else.
    let answered = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (answered && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Bytes an unprivileged process may still write on the file system that holds `path`.
pub(super) fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: the path is a NUL-terminated string that outlives the call; statvfs fills `stats`.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stats) } != 0 {
        return None;
    }
    Some((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64))
}

/// Collects the process metrics at each scrape.
#[derive(Debug)]
pub(super) struct ProcessCollector {
    /// When the registry was made: the start time where `/proc` cannot tell it.
    created: f64,
}

impl ProcessCollector {
    pub(super) fn new() -> ProcessCollector {
        ProcessCollector { created: SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64() }
    }
}

fn gauge<N>(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: N) -> std::fmt::Result
where
    ConstGauge<N>: EncodeMetric,
{
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let stat = read_proc_stat();
        if let Some(stat) = stat {
            let cpu = ConstCounter::new(stat.cpu_seconds);
            // The encoder adds `_total`.
            let help = "User and system CPU time the process has used, in seconds.";
            cpu.encode(encoder.encode_descriptor("process_cpu_seconds", help, None, cpu.metric_type())?)?;
        }
        let started = stat.zip(boot_time()).map_or(self.created, |(stat, boot)| boot + stat.started_after_boot);
        gauge(
            &mut encoder,
            "process_start_time_seconds",
            "When the process started, in seconds since the epoch.",
            started,
        )?;
        if let Some(stat) = stat {
            let help = "Resident memory size in bytes.";
            gauge(&mut encoder, "process_resident_memory_bytes", help, stat.resident_memory_bytes)?;
            let help = "Virtual memory size in bytes.";
            gauge(&mut encoder, "process_virtual_memory_bytes", help, stat.virtual_memory_bytes)?;
        }
        if let Some(open) = open_fds() {
            gauge(&mut encoder, "process_open_fds", "Open file descriptors.", open)?;
        }
        if let Some(max) = max_fds() {
            gauge(&mut encoder, "process_max_fds", "The most file descriptors the process may open.", max)?;
        }
        if let Some(free) = DATA_DIR.get().and_then(|path| free_bytes(path)) {
            let help = "Bytes still free for the server on the file system that holds DATA_DIR.";
            gauge(&mut encoder, "data_dir_free_bytes", help, free)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stat_line_is_read_past_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 150 0 0 20 0 9 0 \
                    5000 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
        let parsed = ProcStat::parse(stat, 100.0, 4096).expect("a stat line");
        assert_eq!(
            parsed,
            ProcStat {
                cpu_seconds: 4.0,
                started_after_boot: 50.0,
                virtual_memory_bytes: 104_857_600,
                resident_memory_bytes: 2560 * 4096,
            }
        );
        assert_eq!(ProcStat::parse("4242 (cut", 100.0, 4096), None);
    }

    #[test]
    fn this_process_reports_plausible_values() {
        let stat = read_proc_stat().expect("Linux has /proc/self/stat");
        assert!(stat.resident_memory_bytes > 0 && stat.virtual_memory_bytes >= stat.resident_memory_bytes);
        assert!(open_fds().is_some_and(|open| open > 0));
        assert!(free_bytes(Path::new(".")).is_some_and(|free| free > 0));
        assert_eq!(free_bytes(Path::new("/no/such/directory")), None);
    }
}
