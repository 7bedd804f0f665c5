//! The routes of the actix-web example app (run it with `cargo run -p actix-app`).
//!
//! The example app of `../shared/CONTRACT.md` on actix-web, route for route the same as
//! `axum-app`, `GET /openapi.json` included. All logic lives in `session-core` and
//! `example-support`; this file routes and translates.

use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::web::{self, Bytes, Data, Form, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use example_support::{AdminRevoke, Demo, LoginForm, LoginQuery, PasswordResetForm, openapi_json};
use session_actix::{SessionCheck, ValidSession, client_info, reply_response, self_service};

async fn home(d: Data<Demo>, ValidSession(s): ValidSession) -> HttpResponse {
    reply_response(d.home(&s))
}

async fn login_page(d: Data<Demo>, q: Query<LoginQuery>) -> HttpResponse {
    reply_response(d.login_page(q.return_to.as_deref()))
}

async fn login(
    d: Data<Demo>,
    req: HttpRequest,
    current: Option<ValidSession>,
    form: Form<LoginForm>,
) -> HttpResponse {
    let current = current.map(|ValidSession(s)| s);
    reply_response(d.login(&form, current.as_ref(), client_info(&req)).await)
}

async fn password_reset(d: Data<Demo>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let content_type = req.headers().get(CONTENT_TYPE).map(|v| v.as_bytes());
    match PasswordResetForm::parse(content_type, &body) {
        Ok(form) => reply_response(d.password_reset(&form).await),
        Err(reply) => reply_response(reply),
    }
}

async fn admin_revoke_all(
    d: Data<Demo>,
    req: HttpRequest,
    user_id: Path<String>,
    body: Bytes,
) -> HttpResponse {
    if !d.is_admin(req.headers().get(AUTHORIZATION).map(|v| v.as_bytes())) {
        return HttpResponse::NotFound().finish();
    }
    match AdminRevoke::parse(&body) {
        Ok(r) => reply_response(d.admin_revoke_all(&user_id, r.reason.as_deref()).await),
        Err(reply) => reply_response(reply),
    }
}

/// `GET /openapi.json`: the OpenAPI document of the JSON routes.
async fn openapi(doc: Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.0.clone())
}

/// The OpenAPI document, built once.
struct OpenApiJson(Bytes);

/// The app's routes over `demo`'s sessions and users: `App::new().configure(routes(demo))`.
pub fn routes(demo: Demo) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let gate = demo.gate().clone();
        let sessions = demo.sessions.clone();
        let doc = Data::new(OpenApiJson(Bytes::from(openapi_json())));
        cfg.app_data(Data::new(demo))
            .service(
                web::resource("/login")
                    .wrap(SessionCheck::new(gate.clone()).optional())
                    .route(web::get().to(login_page))
                    .route(web::post().to(login)),
            )
            .service(web::resource("/password-reset").route(web::post().to(password_reset)))
            .service(
                web::resource("/admin/users/{user_id}/revoke-all")
                    .route(web::post().to(admin_revoke_all)),
            )
            .service(
                web::resource("/openapi.json")
                    .app_data(doc)
                    .route(web::get().to(openapi)),
            )
            .service(
                web::resource("/")
                    .wrap(SessionCheck::new(gate))
                    .route(web::get().to(home)),
            )
            .service(self_service(sessions));
    }
}
