//! Sync workloads: a bounded multi-producer channel and a contended async
//! mutex. Each function checks its own result and returns its operation count.

use std::sync::Arc;

use tokio::sync::{mpsc, Mutex};

/// `producers` tasks each send `per_producer` distinct values into one
/// channel of capacity `capacity`; the calling task receives them all and
/// checks their count and sum.
pub async fn mpsc(producers: u64, per_producer: u64, capacity: usize) -> Result<u64, String> {
    let (tx, mut rx) = mpsc::channel::<u64>(capacity);
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let tx = tx.clone();
            tokio::spawn(async move {
                let first = p * per_producer;
                for value in first..first + per_producer {
                    if tx.send(value).await.is_err() {
                        return Err("receiver went away");
                    }
                }
                Ok(())
            })
        })
        .collect();
    drop(tx);
    let (mut count, mut sum) = (0u64, 0u64);
    while let Some(value) = rx.recv().await {
        count += 1;
        sum += value;
    }
    for handle in handles {
        handle
            .await
            .map_err(|e| format!("producer failed: {}", e))??;
    }
    let n = producers * per_producer;
    ensure!(count == n, "received {} values, expected {}", count, n);
    ensure!(
        sum == n * (n - 1) / 2,
        "sum is {}, expected {}",
        sum,
        n * (n - 1) / 2
    );
    Ok(n)
}

/// `tasks` tasks each take one async mutex `iterations` times, add one to the
/// counter it protects, release it and yield.
pub async fn mutex(tasks: u64, iterations: u64) -> Result<u64, String> {
    let counter = Arc::new(Mutex::new(0u64));
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let counter = counter.clone();
            tokio::spawn(async move {
                for _ in 0..iterations {
                    *counter.lock().await += 1;
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.map_err(|e| format!("task failed: {}", e))?;
    }
    let total = *counter.lock().await;
    ensure!(
        total == tasks * iterations,
        "counter is {}, expected {}",
        total,
        tasks * iterations
    );
    Ok(total)
}
