//! `bench-server VARIANT`: one tiny handler (it answers the user id as text) served on a
//! free port of 127.0.0.1 by a single worker thread, either bare or behind a session check
//! (ours or a peer crate's). Driven by `benches/run.sh`.
//!
//! It prints `listening on http://ADDR` and, for a session variant, `cookie: NAME=VALUE`
//! for one valid session of `bench-user`: ours issues it at start-up; for the peer crates
//! the server logs itself in once through its own `GET /login` route. A request without a
//! valid session gets 401, so every session variant measures a real check.
//!
//! `axum-ours-memory-metrics` and `actix-ours-memory-metrics` are those variants with a
//! Prometheus recorder installed: what the session metrics cost once recorded.

use std::error::Error;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use session_core::{
    ClientInfo, KeySet, MemoryStore, Principal, SessionConfig, SessionGate, SessionManager,
    SessionStore,
};

type BoxError = Box<dyn Error>;

/// The user every session belongs to, and the body every variant answers.
const USER: &str = "bench-user";

/// The variants, as named on the command line.
const VARIANTS: &[&str] = &[
    "axum-bare",
    "axum-ours-memory",
    "axum-ours-redis",
    "axum-ours-memory-wrapped",
    "axum-ours-memory-handler",
    "axum-identity-layer",
    "axum-tower-sessions-memory",
    "axum-tower-sessions-moka",
    "axum-tower-sessions-redis",
    "actix-bare",
    "actix-ours-memory",
    "actix-ours-redis",
    "actix-session-cookie",
    "actix-session-redis",
    "axum-ours-memory-metrics",
    "actix-ours-memory-metrics",
];

/// The key prefix of our Redis store, away from anything else in that Redis.
const OUR_REDIS_PREFIX: &str = "session-bench:";

fn main() {
    let variant = std::env::args().nth(1).unwrap_or_default();
    if !VARIANTS.contains(&variant.as_str()) {
        eprintln!(
            "usage: bench-server VARIANT\nvariants: {}",
            VARIANTS.join(" ")
        );
        std::process::exit(2);
    }
    // `…-metrics`: the same variant with a Prometheus recorder installed before the
    // session manager is built, so every series is recorded (rendering is left out: a
    // scrape's cost does not grow with requests).
    let variant = match variant.strip_suffix("-metrics") {
        Some(base) => {
            if let Err(e) = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()
            {
                eprintln!("bench-server {variant}: {e}");
                std::process::exit(1);
            }
            base.to_owned()
        }
        None => variant,
    };
    let redis_url =
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let result = if variant.starts_with("axum-") {
        // One thread: the current-thread runtime does all the work.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(BoxError::from)
            .and_then(|rt| rt.block_on(axum_server::run(&variant, &redis_url)))
    } else {
        actix_web::rt::System::new().block_on(actix_server::run(&variant, &redis_url))
    };
    if let Err(e) = result {
        eprintln!("bench-server {variant}: {e}");
        std::process::exit(1);
    }
}

/// How the driver gets its session cookie.
enum Cookie {
    /// A bare variant: none.
    None,
    /// Issued at start-up: `NAME=VALUE`.
    Issued(String),
    /// The server logs itself in through `GET /login` once it serves.
    Login,
}

/// Prints the `listening on` line, then the cookie line (after a self-login if needed).
fn announce(addr: SocketAddr, cookie: Cookie) {
    println!("listening on http://{addr}");
    match cookie {
        Cookie::None => {}
        Cookie::Issued(pair) => println!("cookie: {pair}"),
        Cookie::Login => {
            // A plain thread: the server's own thread must be free to answer it.
            std::thread::spawn(move || match login(addr) {
                Ok(pair) => println!("cookie: {pair}"),
                Err(e) => {
                    eprintln!("self-login failed: {e}");
                    std::process::exit(1);
                }
            });
        }
    }
}

/// `GET /login` over a raw HTTP/1.1 connection; returns the first `Set-Cookie`'s
/// `NAME=VALUE`.
fn login(addr: SocketAddr) -> Result<String, BoxError> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("GET /login answered {status:?}").into());
    }
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("set-cookie")
        {
            let pair = value.trim().split(';').next().unwrap_or_default();
            return Ok(pair.to_owned());
        }
    }
    Err("GET /login set no cookie".into())
}

/// Our manager over `store`, its gate, and the `NAME=VALUE` of one session issued now.
async fn our_gate(store: Arc<dyn SessionStore>) -> Result<(SessionGate, Cookie), BoxError> {
    let manager = SessionManager::new(store, KeySet::random(), SessionConfig::default())?;
    let issued = manager
        .issue(Principal::user(USER), ClientInfo::default())
        .await?;
    let gate = SessionGate::new(manager);
    let pair = format!("{}={}", gate.cookie().name(), issued.token.expose());
    Ok((gate, Cookie::Issued(pair)))
}

/// Our Redis store at `url`, under [`OUR_REDIS_PREFIX`].
async fn our_redis(url: &str) -> Result<Arc<dyn SessionStore>, BoxError> {
    let store = session_redis::RedisStore::builder(url)
        .with_prefix(OUR_REDIS_PREFIX)
        .connect()
        .await?;
    Ok(Arc::new(store))
}

mod axum_server {
    use std::sync::Arc;

    use axum::Router;
    use axum::routing::get;
    use session_core::MemoryStore;
    use session_tower::{SessionLayer, ValidSession};
    use tower_sessions_redis_store::fred::prelude::{ClientLike, Config};

    use super::{BoxError, Cookie, USER, announce, our_gate, our_redis};

    /// The handler without a session check; the same owned string as the others.
    async fn bare() -> String {
        USER.to_owned()
    }

    async fn ours(ValidSession(session): ValidSession) -> String {
        session.user_id().as_str().to_owned()
    }

    async fn ours_router(
        store: Arc<dyn session_core::SessionStore>,
    ) -> Result<(Router, Cookie), BoxError> {
        let (gate, cookie) = our_gate(store).await?;
        let app = Router::new()
            .route("/", get(ours))
            .layer(SessionLayer::new(gate));
        Ok((app, cookie))
    }

    /// The same two routes for each tower-sessions version: `/` reads the user id (401
    /// without one), `/login` stores it.
    macro_rules! tower_sessions_router {
        ($module:ident, $krate:ident) => {
            mod $module {
                use axum::Router;
                use axum::http::StatusCode;
                use axum::routing::get;
                use $krate::{Session, SessionManagerLayer, SessionStore};

                use super::USER;

                async fn me(session: Session) -> Result<String, StatusCode> {
                    match session.get::<String>("user_id").await {
                        Ok(Some(user)) => Ok(user),
                        Ok(None) => Err(StatusCode::UNAUTHORIZED),
                        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR),
                    }
                }

                async fn login(session: Session) -> Result<&'static str, StatusCode> {
                    session
                        .insert("user_id", USER)
                        .await
                        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
                    Ok("ok")
                }

                pub(super) fn router<S: SessionStore + Clone>(store: S) -> Router {
                    Router::new()
                        .route("/", get(me))
                        .route("/login", get(login))
                        .layer(SessionManagerLayer::new(store).with_secure(false))
                }
            }
        };
    }

    tower_sessions_router!(ts15, tower_sessions);
    tower_sessions_router!(ts14, tower_sessions_014);

    pub(crate) async fn run(variant: &str, redis_url: &str) -> Result<(), BoxError> {
        if variant == "axum-ours-memory-wrapped" {
            // Not one of the issue's variants: the same layer around the whole Router instead
            // of through `Router::layer`, which boxes the layered service per route and
            // clones it (one allocation) and boxes its future (another) on every request.
            let (gate, cookie) = our_gate(Arc::new(MemoryStore::new())).await?;
            let app = tower_layer::Layer::layer(
                &SessionLayer::new(gate),
                Router::new().route("/", get(ours)),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            announce(listener.local_addr()?, cookie);
            axum::serve(
                listener,
                axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
            )
            .await?;
            return Ok(());
        }
        let (app, cookie) = match variant {
            "axum-bare" => (Router::new().route("/", get(bare)), Cookie::None),
            // Not one of the issue's variants: the bare handler under a layer that does
            // nothing, through `Router::layer`; what axum itself charges for any layer.
            "axum-identity-layer" => (
                Router::new()
                    .route("/", get(bare))
                    .layer(tower_layer::Identity::new()),
                Cookie::None,
            ),
            // Not one of the issue's variants: our layer on the handler alone
            // (`Handler::layer`), which axum does not wrap in a second boxed route.
            "axum-ours-memory-handler" => {
                use axum::handler::Handler;
                let (gate, cookie) = our_gate(Arc::new(MemoryStore::new())).await?;
                (
                    Router::new().route("/", get(ours.layer(SessionLayer::new(gate)))),
                    cookie,
                )
            }
            "axum-ours-memory" => ours_router(Arc::new(MemoryStore::new())).await?,
            "axum-ours-redis" => ours_router(our_redis(redis_url).await?).await?,
            "axum-tower-sessions-memory" => (
                ts15::router(tower_sessions::MemoryStore::default()),
                Cookie::Login,
            ),
            "axum-tower-sessions-moka" => {
                let store = tower_sessions_014::CachingSessionStore::new(
                    tower_sessions_moka_store::MokaStore::new(Some(100_000)),
                    tower_sessions_014::MemoryStore::default(),
                );
                (ts14::router(store), Cookie::Login)
            }
            "axum-tower-sessions-redis" => {
                let client = tower_sessions_redis_store::fred::prelude::Client::new(
                    Config::from_url(redis_url)?,
                    None,
                    None,
                    None,
                );
                client.init().await?;
                let store = tower_sessions_redis_store::RedisStore::new(client);
                (ts14::router(store), Cookie::Login)
            }
            other => return Err(format!("not an axum variant: {other}").into()),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        announce(listener.local_addr()?, cookie);
        axum::serve(listener, app).await?;
        Ok(())
    }
}

mod actix_server {
    use actix_session::storage::{CookieSessionStore, RedisSessionStore};
    use actix_session::{Session, SessionMiddleware};
    use actix_web::cookie::Key;
    use actix_web::{App, HttpResponse, HttpServer, web};
    use session_actix::{SessionCheck, ValidSession};

    use super::{BoxError, Cookie, MemoryStore, USER, announce, our_gate, our_redis};

    /// Seconds a stopping server waits for open connections.
    const SHUTDOWN_SECS: u64 = 1;

    /// The handler without a session check; the same owned string as the others.
    async fn bare() -> HttpResponse {
        HttpResponse::Ok().body(USER.to_owned())
    }

    async fn ours(ValidSession(session): ValidSession) -> HttpResponse {
        HttpResponse::Ok().body(session.user_id().as_str().to_owned())
    }

    async fn me(session: Session) -> HttpResponse {
        match session.get::<String>("user_id") {
            Ok(Some(user)) => HttpResponse::Ok().body(user),
            Ok(None) => HttpResponse::Unauthorized().finish(),
            Err(_) => HttpResponse::InternalServerError().finish(),
        }
    }

    async fn login(session: Session) -> HttpResponse {
        match session.insert("user_id", USER) {
            Ok(()) => HttpResponse::Ok().body("ok"),
            Err(_) => HttpResponse::InternalServerError().finish(),
        }
    }

    pub(crate) async fn run(variant: &str, redis_url: &str) -> Result<(), BoxError> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let (server, cookie) = match variant {
            "actix-bare" => (
                HttpServer::new(|| App::new().route("/", web::get().to(bare)))
                    .workers(1)
                    .shutdown_timeout(SHUTDOWN_SECS)
                    .listen(listener)?
                    .run(),
                Cookie::None,
            ),
            "actix-ours-memory" | "actix-ours-redis" => {
                let store = if variant == "actix-ours-redis" {
                    our_redis(redis_url).await?
                } else {
                    std::sync::Arc::new(MemoryStore::new())
                };
                let (gate, cookie) = our_gate(store).await?;
                let server = HttpServer::new(move || {
                    App::new()
                        .wrap(SessionCheck::new(gate.clone()))
                        .route("/", web::get().to(ours))
                })
                .workers(1)
                .shutdown_timeout(SHUTDOWN_SECS)
                .listen(listener)?
                .run();
                (server, cookie)
            }
            "actix-session-cookie" => {
                let key = Key::generate();
                let server = HttpServer::new(move || {
                    App::new()
                        .wrap(
                            SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
                                .cookie_secure(false)
                                .build(),
                        )
                        .route("/", web::get().to(me))
                        .route("/login", web::get().to(login))
                })
                .workers(1)
                .shutdown_timeout(SHUTDOWN_SECS)
                .listen(listener)?
                .run();
                (server, Cookie::Login)
            }
            "actix-session-redis" => {
                let key = Key::generate();
                let store = RedisSessionStore::new(redis_url)
                    .await
                    .map_err(|e| e.to_string())?;
                let server = HttpServer::new(move || {
                    App::new()
                        .wrap(
                            SessionMiddleware::builder(store.clone(), key.clone())
                                .cookie_secure(false)
                                .build(),
                        )
                        .route("/", web::get().to(me))
                        .route("/login", web::get().to(login))
                })
                .workers(1)
                .shutdown_timeout(SHUTDOWN_SECS)
                .listen(listener)?
                .run();
                (server, Cookie::Login)
            }
            other => return Err(format!("not an actix variant: {other}").into()),
        };
        announce(addr, cookie);
        server.await?;
        Ok(())
    }
}
