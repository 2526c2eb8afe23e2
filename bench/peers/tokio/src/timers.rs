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

/// How late sleeps end while one worker at a time is stuck in a 50 ms poll:
/// 64 tasks sleep 1 + (id + k) mod 4 ms over and over, noting each sleep's
/// lateness against its deadline, while a staller sleeps 20 ms and then spins
/// 50 ms without yielding, `rounds` times. Returns the number of sleeps and
/// the lateness percentiles (p50, p99, max) in microseconds.
pub async fn timer_stall(rounds: u64) -> Result<(u64, [u64; 3]), String> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let stop = Arc::new(AtomicBool::new(false));
    let sleepers: Vec<_> = (0..64u64)
        .map(|id| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut late = Vec::new();
                let mut k = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let deadline = Instant::now() + Duration::from_millis(1 + (id + k) % 4);
                    tokio::time::sleep_until(deadline).await;
                    let now = Instant::now();
                    if now < deadline {
                        return Err(format!("a sleep ended {:?} early", deadline - now));
                    }
                    late.push((now - deadline).as_micros() as u64);
                    k += 1;
                }
                Ok(late)
            })
        })
        .collect();
    let staller = {
        let stop = stop.clone();
        tokio::spawn(async move {
            for _ in 0..rounds {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let until = std::time::Instant::now() + Duration::from_millis(50);
                while std::time::Instant::now() < until {}
            }
            stop.store(true, Ordering::Relaxed);
        })
    };
    staller.await.map_err(|e| format!("staller failed: {}", e))?;
    let mut late = Vec::new();
    for s in sleepers {
        late.extend(s.await.map_err(|e| format!("sleeper failed: {}", e))??);
    }
    ensure!(!late.is_empty(), "no sleep was measured");
    late.sort_unstable();
    let rank = |q: u64| late[((q * late.len() as u64 + 999) / 1000).max(1) as usize - 1];
    Ok((late.len() as u64, [rank(500), rank(990), late[late.len() - 1]]))
}
