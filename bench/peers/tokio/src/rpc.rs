//! tokio-rpc: the server of the RPC latency and server-CPU workloads of the
//! weft benchmarks; the same server as weft-rpc (bench/rpc_server.c).
//!
//! Usage: `tokio-rpc --port P [--threads N] [--work-ns W]`. Listens on
//! 127.0.0.1:P (0 picks a free port) and prints `listening on
//! 127.0.0.1:<port>`. Each connection reads up to 4 KiB at a time; for every
//! whole 64-byte request in what it has, in order, it busy-waits W ns
//! (default 2000) on the monotonic clock and copies the request into the
//! reply buffer; then it writes all those replies in one `write_all` and
//! keeps any partial request for the next read. Exits with status 0 on
//! SIGINT or SIGTERM.
//!
//! The multi-thread runtime with N workers (default 2) runs everything: the
//! accept loop is a spawned task too, so the main thread only waits for the
//! signal in `block_on`.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};

const USAGE: &str = "usage: tokio-rpc --port P [--threads N] [--work-ns W]";
const BUF_SIZE: usize = 4096;
const REQ_SIZE: usize = 64;

fn parse_args() -> Result<(u16, usize, u64), String> {
    let (mut port, mut threads, mut work) = (None, 2, 2000);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{} needs a value", arg))?;
        let bad = || format!("bad {} value '{}'", arg, value);
        match arg.as_str() {
            "--port" => port = Some(value.parse().map_err(|_| bad())?),
            "--threads" => match value.parse() {
                Ok(n) if n > 0 => threads = n,
                _ => return Err(bad()),
            },
            "--work-ns" => work = value.parse().map_err(|_| bad())?,
            _ => return Err(format!("unknown option '{}'", arg)),
        }
    }
    Ok((port.ok_or("--port is required")?, threads, work))
}

fn spin(work: Duration) {
    let start = Instant::now();
    while start.elapsed() < work {}
}

/// Serves one connection until it closes or fails.
async fn serve_conn(mut stream: TcpStream, work: Duration) {
    let mut buf = [0u8; BUF_SIZE];
    let mut out = [0u8; BUF_SIZE];
    let mut have = 0;
    loop {
        match stream.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
        let whole = have / REQ_SIZE * REQ_SIZE;
        if whole == 0 {
            continue;
        }
        for i in (0..whole).step_by(REQ_SIZE) {
            spin(work);
            out[i..i + REQ_SIZE].copy_from_slice(&buf[i..i + REQ_SIZE]);
        }
        if stream.write_all(&out[..whole]).await.is_err() {
            return;
        }
        buf.copy_within(whole..have, 0);
        have -= whole;
    }
}

async fn accept_loop(listener: TcpListener, work: Duration) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(serve_conn(stream, work));
    }
}

async fn serve(port: u16, work: Duration) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let acceptor = tokio::spawn(accept_loop(listener, work));
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    acceptor.abort();
    Ok(())
}

fn main() -> ExitCode {
    let (port, threads, work) = match parse_args() {
        Ok(parsed) => parsed,
        Err(msg) => {
            eprintln!("tokio-rpc: {}\n{}", msg, USAGE);
            return ExitCode::from(2);
        }
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .and_then(|rt| rt.block_on(serve(port, Duration::from_nanos(work))));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio-rpc: {}", e);
            ExitCode::FAILURE
        }
    }
}
