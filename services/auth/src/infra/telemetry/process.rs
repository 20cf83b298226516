//! The standard `process_*` metrics, read from `/proc/self` (Linux) by the housekeeping
//! task: memory, CPU time, file descriptors, threads and start time.
//!
//! Times in `/proc` are in clock ticks of `USER_HZ`, which the kernel fixes at 100 on the
//! architectures we ship (x86_64, aarch64); asking `sysconf` would take `unsafe` code for a
//! constant (Prometheus' own procfs reader assumes 100 as well).

use std::io;

/// Resident memory, bytes.
pub(crate) const RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
/// Virtual memory, bytes.
pub(crate) const VIRTUAL_MEMORY: &str = "process_virtual_memory_bytes";
/// User and system CPU time, seconds.
pub(crate) const CPU_SECONDS: &str = "process_cpu_seconds_total";
/// Open file descriptors.
pub(crate) const OPEN_FDS: &str = "process_open_fds";
/// The soft limit on open file descriptors.
pub(crate) const MAX_FDS: &str = "process_max_fds";
/// Start time, Unix seconds.
pub(crate) const START_TIME: &str = "process_start_time_seconds";
/// Threads.
pub(crate) const THREADS: &str = "process_threads";

/// Clock ticks per second of the times in `/proc` (see the module documentation).
const USER_HZ: f64 = 100.0;

/// What `/proc/self/stat` says, in the units of the metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    cpu_seconds: f64,
    threads: u64,
    /// Seconds after boot.
    started_after_boot: f64,
    virtual_bytes: u64,
}

/// Reads `/proc/self` and sets the process gauges and the CPU counter. An error (no
/// `/proc`, say) leaves them as they were.
pub(crate) fn record_process_metrics() -> io::Result<()> {
    let stat = parse_stat(&std::fs::read_to_string("/proc/self/stat")?)?;
    let resident = parse_resident(&std::fs::read_to_string("/proc/self/status")?)?;
    let boot_time = parse_boot_time(&std::fs::read_to_string("/proc/stat")?)?;
    let open_fds = std::fs::read_dir("/proc/self/fd")?.count();
    let max_fds = parse_max_fds(&std::fs::read_to_string("/proc/self/limits")?);
    metrics::gauge!(RESIDENT_MEMORY).set(resident as f64);
    metrics::gauge!(VIRTUAL_MEMORY).set(stat.virtual_bytes as f64);
    // The facade's counters hold integers: CPU time is counted in whole seconds.
    metrics::counter!(CPU_SECONDS).absolute(stat.cpu_seconds as u64);
    metrics::gauge!(OPEN_FDS).set(open_fds as f64);
    if let Some(max) = max_fds {
        metrics::gauge!(MAX_FDS).set(max as f64);
    }
    metrics::gauge!(START_TIME).set(boot_time as f64 + stat.started_after_boot);
    metrics::gauge!(THREADS).set(stat.threads as f64);
    Ok(())
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("unexpected {what}"))
}

/// `/proc/self/stat`: the fields after the command name (which may hold spaces and
/// parentheses, so the split is at the last `)`), numbered from 3 as in proc(5).
fn parse_stat(text: &str) -> io::Result<Stat> {
    let rest = text
        .rfind(')')
        .map(|at| &text[at + 1..])
        .ok_or_else(|| malformed("/proc/self/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |number: usize| -> io::Result<u64> {
        fields
            .get(number - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| malformed("/proc/self/stat"))
    };
    Ok(Stat {
        cpu_seconds: (field(14)? + field(15)?) as f64 / USER_HZ,
        threads: field(20)?,
        started_after_boot: field(22)? as f64 / USER_HZ,
        virtual_bytes: field(23)?,
    })
}

/// `VmRSS` of `/proc/self/status`, in bytes (the file gives kB).
fn parse_resident(text: &str) -> io::Result<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| malformed("/proc/self/status"))
}

/// `btime` of `/proc/stat`: the boot time, Unix seconds.
fn parse_boot_time(text: &str) -> io::Result<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| malformed("/proc/stat"))
}

/// The soft limit of `Max open files` in `/proc/self/limits` (`None` when unlimited).
fn parse_max_fds(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|values| values.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_the_last_parenthesis() {
        let text = "4242 (mcpg (auth) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 130 0 0 20 0 \
                    7 0 123456 99999744 2000 18446744073709551615\n";
        let stat = parse_stat(text).expect("parses");
        assert_eq!(
            stat,
            Stat {
                cpu_seconds: 3.8,
                threads: 7,
                started_after_boot: 1234.56,
                virtual_bytes: 99_999_744,
            }
        );
        assert!(parse_stat("4242 (truncated").is_err());
        assert!(parse_stat("4242 (x) S 1 2").is_err());
    }

    #[test]
    fn memory_boot_time_and_descriptor_limits_are_parsed() {
        let status = "Name:\tmcpg-auth\nVmSize:\t  99999 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(parse_resident(status).expect("VmRSS"), 2048 * 1024);
        assert!(parse_resident("Name:\tx\n").is_err());
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nbtime 1764900000\nprocesses 9\n").expect("btime"),
            1_764_900_000
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        assert_eq!(
            parse_max_fds(
                "Max open files            unlimited            unlimited            files\n"
            ),
            None
        );
    }

    #[test]
    fn the_running_process_is_measured() {
        let handle = crate::infra::telemetry::metrics_handle();
        record_process_metrics().expect("/proc is readable on Linux");
        let rendered = handle.render();
        for family in [RESIDENT_MEMORY, CPU_SECONDS, OPEN_FDS, START_TIME] {
            assert!(
                rendered.contains(&format!("# TYPE {family} ")),
                "{family} missing from {rendered}"
            );
        }
    }
}
