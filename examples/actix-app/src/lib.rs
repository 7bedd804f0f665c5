//! The routes of the actix-web example app (run it with `cargo run -p actix-app`).
//!
//! The example app of `examples/README.md` on actix-web, route for route the same as
//! `axum-app`. Its own pages are actix handlers behind [`SessionCheck`]: the login form
//! (public, its POST held to the cross-site rule) and the home page (a session required: a
//! refused browser is sent to the login page). Everything else comes from one route table
//! ([`Demo::routes`]) that [`session_actix::routes`] registers.

use actix_web::web::{self, Data, Form, Query};
use actix_web::{HttpRequest, HttpResponse};
use example_support::{Demo, LoginForm, LoginQuery};
use session_actix::{SessionCheck, ValidSession, client_info, respond};

async fn login_page(d: Data<Demo>, q: Query<LoginQuery>) -> HttpResponse {
    respond(d.login_page(&q))
}

async fn login(
    d: Data<Demo>,
    req: HttpRequest,
    current: Option<ValidSession>,
    form: Form<LoginForm>,
) -> HttpResponse {
    let current = current.map(|ValidSession(s)| s);
    respond(d.login(&form, client_info(&req), current.as_ref()).await)
}

async fn home(d: Data<Demo>, ValidSession(s): ValidSession) -> HttpResponse {
    respond(d.home(&s))
}

/// The app's routes over `demo`'s sessions and users: `App::new().configure(routes(demo))`.
pub fn routes(demo: Demo) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let gate = demo.gate().clone();
        let table = demo.routes();
        cfg.app_data(Data::new(demo))
            .service(
                web::resource("/login")
                    .wrap(SessionCheck::new(gate.clone()).optional().guard_forms())
                    .route(web::get().to(login_page))
                    .route(web::post().to(login)),
            )
            .service(
                web::resource("/")
                    .wrap(SessionCheck::new(gate))
                    .route(web::get().to(home)),
            );
        session_actix::routes(table)(cfg);
    }
}
