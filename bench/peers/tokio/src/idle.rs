//! idle_tasks: what one waiting task costs in memory (bench/workloads_idle.c
//! is the weft side and says what is measured).
//!
//! `n` detached tasks each wait for one shared CancellationToken. Once every
//! one has been polled and is waiting, VmRSS is read again; the difference
//! from before the spawns, divided by `n`, goes to stderr as
//! `bytes_per_task N`. Then the token is cancelled and the workload ends when
//! every task has exited.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

struct Shared {
    parked: AtomicU64,
    exited: AtomicU64,
    all_parked: Notify,
    all_exited: Notify,
}

/// The task that brings `counter` to `n` wakes the spawner (a stored permit
/// if the spawner is not waiting yet).
fn count_up(counter: &AtomicU64, n: u64, wake: &Notify) {
    if counter.fetch_add(1, Ordering::AcqRel) + 1 == n {
        wake.notify_one();
    }
}

/// This process's resident set size now, in bytes (VmRSS, as weft and Go
/// read it).
fn rss_bytes() -> Result<i64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {}", e))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| "no VmRSS in /proc/self/status".to_string())
}

pub async fn idle_tasks(n: u64) -> Result<u64, String> {
    let shared = Arc::new(Shared {
        parked: AtomicU64::new(0),
        exited: AtomicU64::new(0),
        all_parked: Notify::new(),
        all_exited: Notify::new(),
    });
    let release = CancellationToken::new();
    let before = rss_bytes()?;
    for _ in 0..n {
        let shared = shared.clone();
        let release = release.clone();
        tokio::spawn(async move {
            count_up(&shared.parked, n, &shared.all_parked);
            release.cancelled().await;
            count_up(&shared.exited, n, &shared.all_exited);
        });
    }
    shared.all_parked.notified().await;
    let after = rss_bytes()?;
    release.cancel();
    shared.all_exited.notified().await;
    let exited = shared.exited.load(Ordering::Acquire);
    ensure!(exited == n, "{} tasks exited, expected {}", exited, n);
    eprintln!("bytes_per_task {}", (after - before) / n as i64);
    Ok(n)
}
