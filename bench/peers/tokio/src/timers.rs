//! Timer workload: many short sleeps of staggered lengths.

use std::time::Duration;

use tokio::time::Instant;

/// Spawns `n` tasks; task i sleeps 1 + (i * 7919 mod 10) ms. Awaits them all
/// and checks that none woke early.
pub async fn timers(n: u64) -> Result<u64, String> {
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let nap = Duration::from_millis(1 + i * 7919 % 10);
            tokio::spawn(async move {
                let start = Instant::now();
                tokio::time::sleep(nap).await;
                start.elapsed() >= nap
            })
        })
        .collect();
    let mut early = 0u64;
    for handle in handles {
        if !handle.await.map_err(|e| format!("task failed: {}", e))? {
            early += 1;
        }
    }
    ensure!(early == 0, "{} of {} sleepers woke early", early, n);
    Ok(n)
}
