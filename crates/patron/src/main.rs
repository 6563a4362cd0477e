//! The `patron` command: parses flags into a validated configuration and calls the pipeline,
//! store and server crates. Kept thin on purpose; every behaviour lives in a library crate.

mod cli;
mod demo;

use clap::Parser;

/// Import cleans rows on the rayon threads and frees them on the database writer's thread;
/// glibc's allocator spends a quarter of an import consolidating memory across those threads,
/// jemalloc's per-thread caches do not. jemalloc also keeps freed pages for a while (10 s)
/// before returning them: mimalloc, used until session 14, returned them after one second
/// and then zeroed the same memory again as huge pages, a tenth of a unify run's time
/// (measured side by side: unify of 200,000 records 7.10 s → 6.31 s, their import 3.97 s →
/// 3.05 s; see docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let args = cli::Args::parse();
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| args.default_log_filter().into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let serves = args.serves();
    if !serves {
        stop_quietly_when_the_reader_goes();
    }
    lower_worker_priority();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader of a piped export went away (`patron export links | head`): the status
        // a SIGPIPE would give, and no message.
        Err(e) if !serves && is_broken_pipe(&e) => std::process::ExitCode::from(141),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `patron import FILE | head` closes the pipe early; a command-line tool then ends without
/// a word, as `cat` does. Rust ignores SIGPIPE, so `println!` panics on the closed pipe
/// instead: that one panic ends the process quietly, with the status a SIGPIPE would give.
/// Not for the server, which prints nothing to a pipe it depends on.
fn stop_quietly_when_the_reader_goes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// Whether a write failed because the reader of standard output went away. The I/O error
/// may come wrapped in a CSV writer's error, itself wrapped in an I/O error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    fn broken(cause: &(dyn std::error::Error + 'static)) -> bool {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::BrokenPipe
                || io.get_ref().is_some_and(|inner| broken(inner));
        }
        match cause.downcast_ref::<csv::Error>().map(csv::Error::kind) {
            Some(csv::ErrorKind::Io(io)) => io.kind() == std::io::ErrorKind::BrokenPipe,
            _ => false,
        }
    }
    e.chain().any(broken)
}

/// Runs the rayon pool, which does the bulk CPU work (cleaning imports, model fits), at a lower
/// scheduling priority than the threads that serve requests and write to the database: on a
/// small machine a busy pool then neither starves the server nor lets the single database
/// writer fall behind and stall the pipeline.
fn lower_worker_priority() {
    let built = rayon::ThreadPoolBuilder::new()
        .start_handler(|_| {
            // On Linux a priority set for "this process" applies to the calling thread alone.
            #[cfg(target_os = "linux")]
            if let Err(e) = rustix::process::setpriority_process(None, 10) {
                tracing::debug!("cannot lower a worker thread's priority: {e}");
            }
        })
        .build_global();
    if let Err(e) = built {
        tracing::debug!("rayon pool already configured: {e}");
    }
}
