//! `session-admin`: see the crate docs, or `session-admin --help`.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use session_admin::Error;
use session_admin::cli::{Cli, run};
use session_admin::connect::mask;

/// stderr, with the secrets masked: where log lines go (a driver's error message could
/// quote a URL).
#[derive(Clone)]
struct MaskedStderr(Arc<Vec<String>>);

impl Write for MaskedStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        io::stderr().write_all(mask(&text, &self.0).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Warnings worth an operator's eyes: above all, a revocation that held in the store but
/// could not be pushed to the nodes (they then learn within their staleness bound).
/// `RUST_LOG` says otherwise.
fn logging(secrets: Arc<Vec<String>>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("session_core=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .without_time()
        .with_writer(move || MaskedStderr(secrets.clone()))
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let secrets = Arc::new(cli.secrets());
    logging(secrets.clone());
    let fail = |message: String| {
        let _ = writeln!(io::stderr(), "error: {}", mask(&message, &secrets));
        ExitCode::from(Error::EXIT_STATUS)
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(format!("cannot start: {e}")),
    };
    let result = runtime.block_on(async {
        let mut stdout = io::stdout().lock();
        run(cli, &mut stdout).await
    });
    // The stores' background tasks (push listeners) need not finish.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(outcome) => ExitCode::from(outcome.exit_status()),
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => fail(e.one_line()),
    }
}
