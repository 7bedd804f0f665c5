//! Run with `cargo run -p axum-app`.
//!
//! Serves the contract's app on `BIND`:`PORT` (default 127.0.0.1:3000).

use std::net::SocketAddr;

use axum_app::app;
use example_support::{Demo, Settings};

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let settings = Settings::from_env(3000).unwrap_or_else(|e| {
        eprintln!("configuration error: {e}");
        std::process::exit(2);
    });
    let demo = Demo::new(&settings).unwrap_or_else(|e| {
        eprintln!("configuration error: {e}");
        std::process::exit(2);
    });
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .unwrap_or_else(|e| {
            eprintln!("cannot listen on {}: {e}", settings.addr);
            std::process::exit(1);
        });
    let addr = listener.local_addr().expect("bound socket has an address");
    println!("listening on http://{addr}");
    axum::serve(
        listener,
        app(demo).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .expect("server runs");
}
