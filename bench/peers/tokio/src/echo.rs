//! tokio-echo: the TCP echo server of the weft echo benchmark.
//!
//! Usage: `tokio-echo --port P [--threads N]`. Listens on 127.0.0.1:P (0 picks
//! a free port) and prints `listening on 127.0.0.1:<port>`; each connection
//! reads up to 4 KiB at a time and writes it all back. Exits with status 0 on
//! SIGINT or SIGTERM.
//!
//! `--threads 1` runs tokio's current-thread runtime: every task, the I/O
//! driver and the timers on the main thread, so the server is really one
//! thread (a one-worker multi-thread runtime would still poll the accept loop
//! on the main thread beside its worker). More threads run the multi-thread
//! runtime with that many workers.

use std::io::Write;
use std::process::ExitCode;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};

const USAGE: &str = "usage: tokio-echo --port P [--threads N]";

fn parse_args() -> Result<(u16, usize), String> {
    let (mut port, mut threads) = (None, 2);
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
            _ => return Err(format!("unknown option '{}'", arg)),
        }
    }
    Ok((port.ok_or("--port is required")?, threads))
}

/// Echoes everything `stream` sends until it closes or fails.
async fn echo(mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn serve(port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                stream.set_nodelay(true)?;
                tokio::spawn(echo(stream));
            }
            _ = interrupt.recv() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
        }
    }
}

fn main() -> ExitCode {
    let (port, threads) = match parse_args() {
        Ok(parsed) => parsed,
        Err(msg) => {
            eprintln!("tokio-echo: {}\n{}", msg, USAGE);
            return ExitCode::from(2);
        }
    };
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut multi = tokio::runtime::Builder::new_multi_thread();
        multi.worker_threads(threads);
        multi
    };
    let result = builder
        .enable_all()
        .build()
        .and_then(|rt| rt.block_on(serve(port)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio-echo: {}", e);
            ExitCode::FAILURE
        }
    }
}
