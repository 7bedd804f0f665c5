//! Run with `cargo run -p actix-app`.
//!
//! Serves the contract's app on `BIND`:`PORT` (default 127.0.0.1:3001).

use actix_app::routes;
use actix_web::{App, HttpServer};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let (settings, demo) = example_support::start(3001).await;
    let server = HttpServer::new(move || App::new().configure(routes(demo.clone())))
        .workers(2)
        .bind(settings.addr)?;
    let addr = server.addrs()[0];
    let running = server.run();
    println!("listening on http://{addr}");
    running.await
}
