//! tokio-wake: the wake-latency workloads (wake_1, wake_8) of the weft
//! benchmarks on tokio's multi-thread runtime; the same workload as weft-wake
//! (bench/wake.c has the full definition).
//!
//! Usage: `tokio-wake [--threads N] [--seconds D] [--warmup W] [--calibrate C]
//! [--rate R] [--load F] [--consumers K] WORKLOAD ...`. Prints
//! `<workload> <seconds> <samples> <samples_per_second>` on stdout and the
//! figures (`p50_us p99_us p999_us max_us load_busy late_p99_us late_max_us
//! missed`) as `key value` lines on stderr.
//!
//! - Background load: 4 tasks per worker, staggered over P = 10 ms; each
//!   period a task runs C = round(F * 50) chunks of a 50 us busy-wait then
//!   `yield_now`, and sleeps (`sleep_until`) to its next deadline.
//! - Producer: the main thread, outside the runtime, on a schedule fixed in
//!   advance (gaps uniform in [M/2, 3M/2), M = 1e9 / R ns, from splitmix64);
//!   it sleeps until each due time (`clock_nanosleep`, absolute), reads
//!   CLOCK_MONOTONIC and sends the reading: wake_1 through an unbounded mpsc
//!   channel to one consumer task, wake_8 through one `broadcast` send to 8.
//! - A consumer subtracts the stamp from CLOCK_MONOTONIC when `recv` returns.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

/// Fails the enclosing function with a formatted message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

const PERIOD_NS: u64 = 10_000_000;
const CHUNK_NS: u64 = 50_000;
const TASKS_PER_THREAD: usize = 4;
const SEED: u64 = 0x5745_4654_5741_4b45;
const BROADCAST_CAPACITY: usize = 4096;

const USAGE: &str = "usage: tokio-wake [--threads N] [--seconds D] [--warmup W] \
                     [--calibrate C] [--rate R] [--load F] [--consumers K] WORKLOAD ...\n\
                     workloads: wake_1 wake_8";

struct Options {
    threads: usize,
    seconds: f64,
    warmup: f64,
    calibrate: f64,
    rate: f64,
    load: f64,
    consumers: usize,
    workloads: Vec<String>,
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write into.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

fn sleep_until_ns(t: u64) {
    let ts = libc::timespec {
        tv_sec: (t / 1_000_000_000) as libc::time_t,
        tv_nsec: (t % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: plain syscall on a valid timespec; retried on EINTR.
    while unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    } == libc::EINTR
    {}
}

fn spin_ns(ns: u64) {
    let start = now_ns();
    while now_ns() - start < ns {}
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Nearest rank in integers (bench/latency.h): q in 1..=1000.
fn rank(sorted: &[u64], q: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let r = (q * sorted.len() + 999) / 1000;
    sorted[r.max(1) - 1]
}

/// A `tokio::time::Instant` for a CLOCK_MONOTONIC reading (the same clock).
fn instant_at(t: u64) -> tokio::time::Instant {
    let now = now_ns();
    let base = tokio::time::Instant::now();
    if t > now {
        base + Duration::from_nanos(t - now)
    } else {
        base
    }
}

async fn load_task(first: u64, chunks: u32, stop: Arc<AtomicBool>) {
    let mut deadline = first;
    loop {
        tokio::time::sleep_until(instant_at(deadline)).await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        for _ in 0..chunks {
            spin_ns(CHUNK_NS);
            tokio::task::yield_now().await;
        }
        deadline += PERIOD_NS;
        let now = now_ns();
        if deadline <= now {
            deadline += ((now - deadline) / PERIOD_NS + 1) * PERIOD_NS;
        }
    }
}

fn run(name: &str, o: &Options) -> Result<(), String> {
    let broadcast = name != "wake_1";
    let nconsumers = if broadcast { o.consumers } else { 1 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.threads)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build runtime: {}", e))?;

    let stop = Arc::new(AtomicBool::new(false));
    let chunks = (o.load * 50.0).round() as u32;
    let nbg = TASKS_PER_THREAD * o.threads;
    let t0 = now_ns() + 1_000_000;
    let bg: Vec<_> = (0..nbg)
        .map(|i| rt.spawn(load_task(t0 + i as u64 * PERIOD_NS / nbg as u64, chunks, stop.clone())))
        .collect();

    sleep_until_ns(now_ns() + 200_000_000);
    let (c0, w0) = (clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID), now_ns());
    sleep_until_ns(w0 + (o.calibrate * 1e9) as u64);
    let load_busy = (clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID) - c0) as f64
        / ((now_ns() - w0) as f64 * o.threads as f64);

    // The schedule, fixed in advance: due[k] ns after the start.
    let mean = (1e9 / o.rate) as u64;
    let (warm_ns, meas_ns) = ((o.warmup * 1e9) as u64, (o.seconds * 1e9) as u64);
    let mut state = SEED;
    let mut due = Vec::new();
    let mut at = 0u64;
    while at < warm_ns + meas_ns {
        due.push(at);
        at += mean / 2 + splitmix64(&mut state) % mean;
    }
    let first_measured = due.iter().take_while(|&&d| d < warm_ns).count();
    let nmeasured = due.len() - first_measured;

    let measure_from = Arc::new(AtomicU64::new(u64::MAX));
    let missed = Arc::new(AtomicU64::new(0));
    let mut mpsc_tx = None;
    let mut bcast_tx = None;
    let mut consumers = Vec::new();
    if broadcast {
        let (tx, _) = broadcast::channel::<u64>(BROADCAST_CAPACITY);
        for _ in 0..nconsumers {
            let mut rx = tx.subscribe();
            let (from, missed) = (measure_from.clone(), missed.clone());
            consumers.push(rt.spawn(async move {
                let mut samples = Vec::with_capacity(nmeasured);
                loop {
                    match rx.recv().await {
                        Ok(v) => {
                            let now = now_ns();
                            if v >= from.load(Ordering::Relaxed) {
                                samples.push(now - v);
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            missed.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(broadcast::error::RecvError::Closed) => return samples,
                    }
                }
            }));
        }
        bcast_tx = Some(tx);
    } else {
        let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
        let from = measure_from.clone();
        consumers.push(rt.spawn(async move {
            let mut samples = Vec::with_capacity(nmeasured);
            while let Some(v) = rx.recv().await {
                let now = now_ns();
                if v >= from.load(Ordering::Relaxed) {
                    samples.push(now - v);
                }
            }
            samples
        }));
        mpsc_tx = Some(tx);
    }

    // The producer: this thread, on the schedule whatever the consumers do.
    let start = now_ns() + 5_000_000;
    let mut late = Vec::with_capacity(nmeasured);
    for (k, &d) in due.iter().enumerate() {
        sleep_until_ns(start + d);
        let stamp = now_ns();
        // The first measured send's stamp splits warmup from measured (a
        // late warmup send still has a smaller one); the channel orders this
        // store before the consumers' reads.
        if k == first_measured {
            measure_from.store(stamp, Ordering::Relaxed);
        }
        if k >= first_measured {
            late.push(stamp - (start + d));
        }
        let sent = match (&mpsc_tx, &bcast_tx) {
            (Some(tx), _) => tx.send(stamp).is_ok(),
            (_, Some(tx)) => tx.send(stamp).is_ok(),
            _ => false,
        };
        ensure!(sent, "send failed: a consumer went away");
    }
    drop(mpsc_tx);
    drop(bcast_tx);

    let mut samples = Vec::with_capacity(nmeasured * nconsumers);
    for c in consumers {
        samples.extend(rt.block_on(c).map_err(|e| format!("consumer failed: {}", e))?);
    }
    stop.store(true, Ordering::Relaxed);
    for b in bg {
        rt.block_on(b).map_err(|e| format!("load task failed: {}", e))?;
    }
    drop(rt);

    let missed = missed.load(Ordering::Relaxed);
    ensure!(
        samples.len() == nmeasured * nconsumers,
        "{} samples, expected {}",
        samples.len(),
        nmeasured * nconsumers
    );
    ensure!(missed == 0, "consumers missed {} values", missed);
    println!(
        "{} {:.6} {} {:.0}",
        name,
        o.seconds,
        samples.len(),
        samples.len() as f64 / o.seconds
    );
    samples.sort_unstable();
    late.sort_unstable();
    for (key, q) in [("p50_us", 500), ("p99_us", 990), ("p999_us", 999), ("max_us", 1000)] {
        eprintln!("{} {:.1}", key, rank(&samples, q) as f64 / 1e3);
    }
    eprintln!("load_busy {:.3}", load_busy);
    eprintln!("late_p99_us {:.1}", rank(&late, 990) as f64 / 1e3);
    eprintln!("late_max_us {:.1}", rank(&late, 1000) as f64 / 1e3);
    eprintln!("missed {}", missed);
    Ok(())
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        threads: 2,
        seconds: 5.0,
        warmup: 1.0,
        calibrate: 1.0,
        rate: 2000.0,
        load: 0.6,
        consumers: 8,
        workloads: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "wake_1" || arg == "wake_8" {
            o.workloads.push(arg);
            continue;
        }
        let v = args.next().ok_or_else(|| format!("{} needs a value", arg))?;
        let bad = || format!("bad {} value '{}'", arg, v);
        let f = || v.parse::<f64>().ok().filter(|f| f.is_finite() && *f >= 0.0);
        match arg.as_str() {
            "--threads" => o.threads = v.parse().ok().filter(|&n| n > 0).ok_or_else(bad)?,
            "--consumers" => o.consumers = v.parse().ok().filter(|&n| n > 0).ok_or_else(bad)?,
            "--seconds" => o.seconds = f().filter(|&f| f > 0.0).ok_or_else(bad)?,
            "--warmup" => o.warmup = f().ok_or_else(bad)?,
            "--calibrate" => o.calibrate = f().filter(|&f| f > 0.0).ok_or_else(bad)?,
            "--rate" => o.rate = f().filter(|&f| f > 0.0).ok_or_else(bad)?,
            "--load" => o.load = f().ok_or_else(bad)?,
            _ => return Err(format!("unknown workload or option '{}'", arg)),
        }
    }
    if o.workloads.is_empty() {
        return Err("no workload given".into());
    }
    Ok(o)
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("tokio-wake: {}\n{}", msg, USAGE);
            return ExitCode::from(2);
        }
    };
    for name in &o.workloads {
        if let Err(msg) = run(name, &o) {
            eprintln!("tokio-wake: {}: {}", name, msg);
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
