//! The example apps served from inside the test process, on `127.0.0.1:0`, over a
//! [`Demo`] the test built: so a test can share one store between frameworks, or wrap the
//! store to count calls and inject faults.

use std::net::{SocketAddr, TcpListener};
use std::thread::{self, JoinHandle};

use example_support::Demo;

/// Which framework serves the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framework {
    /// `axum-app`'s router.
    Axum,
    /// `actix-app`'s routes.
    Actix,
}

impl Framework {
    /// The example binary serving this framework.
    #[must_use]
    pub const fn binary(self) -> &'static str {
        match self {
            Self::Axum => "axum-app",
            Self::Actix => "actix-app",
        }
    }
}

enum Stop {
    Axum(tokio::sync::oneshot::Sender<()>),
    Actix(actix_web::dev::ServerHandle),
}

/// A server on its own thread and runtime; stopped and joined when dropped.
pub(crate) struct Server {
    stop: Option<Stop>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

impl Server {
    /// Serves `demo` with `framework`; returns the server and its address.
    pub(crate) fn start(framework: Framework, demo: Demo) -> (Self, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("bound address");
        let (stop, thread) = match framework {
            Framework::Axum => {
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                let thread = thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .expect("tokio runtime");
                    runtime.block_on(async move {
                        let listener =
                            tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                        let app =
                            axum_app::app(demo).into_make_service_with_connect_info::<SocketAddr>();
                        axum::serve(listener, app)
                            .with_graceful_shutdown(async {
                                let _ = rx.await;
                            })
                            .await
                            .expect("axum serves");
                    });
                });
                (Stop::Axum(tx), thread)
            }
            Framework::Actix => {
                let (tx, rx) = std::sync::mpsc::channel();
                let thread = thread::spawn(move || {
                    actix_web::rt::System::new().block_on(async move {
                        let server = actix_web::HttpServer::new(move || {
                            actix_web::App::new().configure(actix_app::routes(demo.clone()))
                        })
                        .workers(1)
                        .disable_signals()
                        .listen(listener)
                        .expect("actix listens")
                        .run();
                        tx.send(server.handle()).expect("handle sent");
                        server.await.expect("actix serves");
                    });
                });
                let handle = rx.recv().expect("actix server started");
                (Stop::Actix(handle), thread)
            }
        };
        (
            Self {
                stop: Some(stop),
                thread: Some(thread),
            },
            addr,
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        match self.stop.take() {
            Some(Stop::Axum(tx)) => {
                let _ = tx.send(());
            }
            Some(Stop::Actix(handle)) => {
                // The stop command is sent at once; its future only waits for completion.
                drop(handle.stop(false));
            }
            None => {}
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
