//! Run with `cargo run -p actix-app`.
//!
//! Serves the contract's app on `BIND`:`PORT` (default 127.0.0.1:3001).

use actix_app::routes;
use actix_web::{App, HttpServer};
use example_support::{Demo, Settings};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let settings = Settings::from_env(3001).unwrap_or_else(|e| {
        eprintln!("configuration error: {e}");
        std::process::exit(2);
    });
    let demo = Demo::new(&settings).unwrap_or_else(|e| {
        eprintln!("configuration error: {e}");
        std::process::exit(2);
    });
    let server = HttpServer::new(move || App::new().configure(routes(demo.clone())))
        .workers(2)
        .bind(settings.addr)?;
    let addr = server.addrs()[0];
    let running = server.run();
    println!("listening on http://{addr}");
    running.await
}
