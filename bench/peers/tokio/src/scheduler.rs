//! Scheduler workloads: spawning, joining, yielding, message round trips,
//! spawn chains, aborting tasks and cancelling them through tokens.
//!
//! Each function runs inside a runtime task, checks its own result and
//! returns the number of operations it performed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Spawns `n` detached tasks that each bump a shared counter; the task that
/// brings it to `n` wakes the spawner.
pub async fn spawn_many(n: u64) -> Result<u64, String> {
    struct Shared {
        count: AtomicU64,
        done: Notify,
    }
    let shared = Arc::new(Shared {
        count: AtomicU64::new(0),
        done: Notify::new(),
    });
    for _ in 0..n {
        let shared = shared.clone();
        tokio::spawn(async move {
            if shared.count.fetch_add(1, Ordering::AcqRel) + 1 == n {
                shared.done.notify_one();
            }
        });
    }
    shared.done.notified().await;
    let count = shared.count.load(Ordering::Acquire);
    ensure!(count == n, "counter is {}, expected {}", count, n);
    Ok(n)
}

/// Spawns `n` tasks returning their index, then awaits every handle in spawn
/// order and checks the sum.
pub async fn spawn_join(n: u64) -> Result<u64, String> {
    let handles: Vec<JoinHandle<u64>> = (0..n).map(|i| tokio::spawn(async move { i })).collect();
    let mut sum = 0u64;
    for handle in handles {
        sum += handle.await.map_err(|e| format!("task failed: {}", e))?;
    }
    let expected = n * (n - 1) / 2;
    ensure!(sum == expected, "sum is {}, expected {}", sum, expected);
    Ok(n)
}

/// Runs `tasks` tasks that each yield `yields` times.
pub async fn yield_many(tasks: u64, yields: u64) -> Result<u64, String> {
    let handles: Vec<JoinHandle<u64>> = (0..tasks)
        .map(|_| {
            tokio::spawn(async move {
                for _ in 0..yields {
                    tokio::task::yield_now().await;
                }
                yields
            })
        })
        .collect();
    let mut total = 0;
    for handle in handles {
        total += handle.await.map_err(|e| format!("task failed: {}", e))?;
    }
    ensure!(
        total == tasks * yields,
        "{} yields, expected {}",
        total,
        tasks * yields
    );
    Ok(total)
}

/// A ping_pong request: a value and the channel its reply goes back on.
type Request = (u64, oneshot::Sender<u64>);

/// Runs `pairs` client/server pairs. Each client sends `trips` requests over
/// a channel, each carrying a one-shot reply channel, and awaits each reply
/// (the request value plus one) before sending the next.
pub async fn ping_pong(pairs: u64, trips: u64) -> Result<u64, String> {
    let mut clients = Vec::with_capacity(pairs as usize);
    let mut servers = Vec::with_capacity(pairs as usize);
    for _ in 0..pairs {
        let (tx, mut rx) = mpsc::channel::<Request>(1);
        servers.push(tokio::spawn(async move {
            while let Some((value, reply)) = rx.recv().await {
                let _ = reply.send(value + 1);
            }
        }));
        clients.push(tokio::spawn(async move {
            for i in 0..trips {
                let (reply_tx, reply_rx) = oneshot::channel();
                tx.send((i, reply_tx))
                    .await
                    .map_err(|_| "server went away")?;
                let reply = reply_rx.await.map_err(|_| "reply dropped")?;
                ensure!(reply == i + 1, "reply {} to request {}", reply, i);
            }
            Ok::<u64, String>(trips)
        }));
    }
    let mut total = 0;
    for client in clients {
        total += client
            .await
            .map_err(|e| format!("client failed: {}", e))??;
    }
    for server in servers {
        server.await.map_err(|e| format!("server failed: {}", e))?;
    }
    ensure!(
        total == pairs * trips,
        "{} round trips, expected {}",
        total,
        pairs * trips
    );
    Ok(total)
}

/// Spawns the task at depth `depth` of a chain `len` tasks long. Every task
/// spawns its successor and returns; the last one reports its depth.
fn spawn_link(depth: u64, len: u64, done: oneshot::Sender<u64>) {
    tokio::spawn(async move {
        if depth == len {
            let _ = done.send(depth);
        } else {
            spawn_link(depth + 1, len, done);
        }
    });
}

/// Spawns a chain of `n` tasks, each spawning the next; the last one signals
/// completion.
pub async fn chained_spawn(n: u64) -> Result<u64, String> {
    let (done_tx, done_rx) = oneshot::channel();
    spawn_link(1, n, done_tx);
    let depth = done_rx.await.map_err(|_| "chain broke before its end")?;
    ensure!(depth == n, "chain ended at depth {}, expected {}", depth, n);
    Ok(n)
}

/// Counts its own drop into a shared counter.
struct DropHook(Arc<AtomicU64>);

impl Drop for DropHook {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Spawns `n` tasks that wait forever while owning a drop hook, aborts every
/// task, awaits every handle (each must report cancellation) and checks that
/// each hook was dropped exactly once.
pub async fn abort_churn(n: u64) -> Result<u64, String> {
    let drops = Arc::new(AtomicU64::new(0));
    let handles: Vec<JoinHandle<()>> = (0..n)
        .map(|_| {
            // Built outside the task body so it is dropped even if the task is
            // aborted before its first poll.
            let hook = DropHook(drops.clone());
            tokio::spawn(async move {
                let _hook = hook;
                std::future::pending::<()>().await;
            })
        })
        .collect();
    for handle in &handles {
        handle.abort();
    }
    for handle in handles {
        match handle.await {
            Err(e) if e.is_cancelled() => {}
            Err(e) => return Err(format!("aborted task failed: {}", e)),
            Ok(()) => return Err("an aborted task completed".to_string()),
        }
    }
    let dropped = drops.load(Ordering::Relaxed);
    ensure!(dropped == n, "{} drop hooks ran, expected {}", dropped, n);
    Ok(n)
}

/// Spawns `n` tasks that each wait on a child token of one parent, cancels
/// the parent and awaits every task.
pub async fn token_cancel(n: u64) -> Result<u64, String> {
    let parent = CancellationToken::new();
    let exited = Arc::new(AtomicU64::new(0));
    let handles: Vec<JoinHandle<()>> = (0..n)
        .map(|_| {
            let token = parent.child_token();
            let exited = exited.clone();
            tokio::spawn(async move {
                token.cancelled().await;
                exited.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    parent.cancel();
    for handle in handles {
        handle.await.map_err(|e| format!("task failed: {}", e))?;
    }
    let exited = exited.load(Ordering::Relaxed);
    ensure!(
        exited == n,
        "{} tasks saw the cancellation, expected {}",
        exited,
        n
    );
    Ok(n)
}
