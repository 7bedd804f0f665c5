//! Run with `cargo run -p axum-app`.
//!
//! Serves the contract's app on `BIND`:`PORT` (default 127.0.0.1:3000).

use std::net::SocketAddr;

use axum_app::app;

#[tokio::main]
async fn main() {
    let (settings, demo) = example_support::start(3000).await;
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
