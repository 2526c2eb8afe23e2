//! tokio-bench: the weft benchmark workloads (docs/benchmarks.md) on tokio's
//! multi-thread runtime.
//!
//! Usage: `tokio-bench [--threads N] [--scale F] [WORKLOAD ...]`. Prints one line
//! per workload on stdout, `<workload> <seconds> <operations> <ops_per_second>`;
//! failed checks go to stderr and make the exit status non-zero. idle_tasks
//! also prints `bytes_per_task N` on stderr.

use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Fails the enclosing workload with a formatted message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

mod idle;
mod primitives;
mod scheduler;
mod timers;

/// Every workload, in the order of docs/benchmarks.md, then idle_tasks.
const WORKLOADS: &[&str] = &[
    "spawn_many",
    "spawn_join",
    "yield_many",
    "ping_pong",
    "chained_spawn",
    "abort_churn",
    "token_cancel",
    "mpsc",
    "mutex",
    "timers",
    "timer_stall",
    "idle_tasks",
];

const USAGE: &str = "usage: tokio-bench [--threads N] [--scale F] [WORKLOAD ...]";

struct Options {
    threads: usize,
    scale: f64,
    workloads: Vec<&'static str>,
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        threads: 2,
        scale: 1.0,
        workloads: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => {
                let v = args.next().ok_or("--threads needs a value")?;
                opts.threads = match v.parse() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(format!("bad --threads value '{}'", v)),
                };
            }
            "--scale" => {
                let v = args.next().ok_or("--scale needs a value")?;
                opts.scale = match v.parse::<f64>() {
                    Ok(f) if f.is_finite() && f > 0.0 => f,
                    _ => return Err(format!("bad --scale value '{}'", v)),
                };
            }
            name => match WORKLOADS.iter().find(|w| **w == name) {
                Some(w) => opts.workloads.push(*w),
                None => return Err(format!("unknown workload or option '{}'", name)),
            },
        }
    }
    if opts.workloads.is_empty() {
        opts.workloads = WORKLOADS.to_vec();
    }
    Ok(opts)
}

/// Scales a nominal count by `--scale`, keeping at least one.
fn scaled(n: u64, scale: f64) -> u64 {
    ((n as f64 * scale).round() as u64).max(1)
}

/// Runs one workload with the sizes of docs/benchmarks.md and returns its operation
/// count. `--scale` shrinks the per-task iteration counts, never the number of
/// concurrent tasks of a fixed-width workload.
async fn run(name: &str, s: f64) -> Result<u64, String> {
    match name {
        "spawn_many" => scheduler::spawn_many(scaled(1_000_000, s)).await,
        "spawn_join" => scheduler::spawn_join(scaled(200_000, s)).await,
        "yield_many" => scheduler::yield_many(1_000, scaled(1_000, s)).await,
        "ping_pong" => scheduler::ping_pong(1_000, scaled(1_000, s)).await,
        "chained_spawn" => scheduler::chained_spawn(scaled(1_000_000, s)).await,
        "abort_churn" => scheduler::abort_churn(scaled(500_000, s)).await,
        "token_cancel" => scheduler::token_cancel(scaled(500_000, s)).await,
        "mpsc" => primitives::mpsc(4, scaled(250_000, s), 1_024).await,
        "mutex" => primitives::mutex(100, scaled(10_000, s)).await,
        "timers" => timers::timers(scaled(100_000, s)).await,
        "timer_stall" => {
            let (sleeps, [p50, p99, max]) = timers::timer_stall(scaled(20, s)).await?;
            eprintln!("p50_us {}\np99_us {}\nmax_us {}", p50, p99, max);
            Ok(sleeps)
        }
        "idle_tasks" => idle::idle_tasks(scaled(1_000_000, s)).await,
        _ => Err(format!("no such workload '{}'", name)),
    }
}

/// Runs `name` on a fresh runtime and returns its duration and operation count.
/// Only the workload is timed; it runs as a task on a worker thread, so spawns
/// take the same path as in the other runtimes.
fn measure(threads: usize, name: &'static str, scale: f64) -> Result<(Duration, u64), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build runtime: {}", e))?;
    rt.block_on(async move {
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let ops = run(name, scale).await?;
            Ok((start.elapsed(), ops))
        });
        task.await
            .map_err(|e| format!("workload task failed: {}", e))?
    })
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(opts) => opts,
        Err(msg) => {
            eprintln!("tokio-bench: {}\n{}", msg, USAGE);
            return ExitCode::from(2);
        }
    };
    for name in opts.workloads {
        match measure(opts.threads, name, opts.scale) {
            Ok((elapsed, ops)) => {
                let secs = elapsed.as_secs_f64();
                let rate = (ops as f64 / secs).round() as u64;
                println!("{} {:.6} {} {}", name, secs, ops, rate);
            }
            Err(msg) => {
                eprintln!("tokio-bench: {}: {}", name, msg);
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
