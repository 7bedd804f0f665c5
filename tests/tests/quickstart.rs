//! The README's programs: each is an example crate whose `main.rs` the README shows word for
//! word, and they do what the README says.
//!
//! - the axum program on SQLite with `SESSION_KEYS` set: sign in, restart, the cookie still
//!   works; without `SESSION_KEYS` it warns that sessions die with the process;
//! - both programs: login with `return_to`, the protected page, the sessions page under
//!   `/auth`, sign out everywhere, and a refused navigation sent to the login page.

use std::path::Path;

use reqwest::StatusCode;
use session_conformance::{App, Browser};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path))
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

#[test]
fn the_readme_shows_each_program_as_it_is() {
    let readme = read("README.md");
    for program in [
        "examples/quickstart-axum/src/main.rs",
        "examples/quickstart-actix/src/main.rs",
    ] {
        let code = read(program);
        assert!(
            readme.contains(&format!("```rust,no_run\n{code}```")),
            "README.md does not show {program} as it stands"
        );
    }
    // And the dependencies each needs, by name.
    for (manifest, deps) in [
        (
            "examples/quickstart-axum/Cargo.toml",
            &[
                "axum",
                "serde",
                "session-core",
                "session-sqlite",
                "session-tower",
                "tokio",
                "tracing-subscriber",
            ][..],
        ),
        (
            "examples/quickstart-actix/Cargo.toml",
            &["actix-web", "serde", "session-actix", "session-core"][..],
        ),
    ] {
        let manifest = read(manifest);
        for dep in deps {
            assert!(
                manifest.contains(&format!("\n{dep}")),
                "{dep} missing from the crate"
            );
            assert!(
                readme.contains(&format!("\n{dep} = ")),
                "{dep} missing from the README"
            );
        }
    }
}

const KEY: &str = "dGhpcyBpcyBhIHRlc3Qga2V5IG9mIDMyIGJ5dGVzISE";

async fn sign_in(app: &App) -> Browser {
    let mut browser = Browser::new(app.base_url(), "Mozilla/5.0 quickstart test");
    let reply = browser
        .post_form(
            "/login?return_to=%2Fauth%2Faccount%2Fsessions",
            &[("username", "alice"), ("password", "alice-password")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{reply:?}");
    assert_eq!(
        reply.header("location").as_deref(),
        Some("/auth/account/sessions")
    );
    assert!(browser.token().is_some(), "no session cookie: {reply:?}");
    browser
}

async fn assert_signed_in(browser: &mut Browser, what: &str) {
    let reply = browser.get("/").await;
    assert_eq!(reply.status, StatusCode::OK, "{what}: {reply:?}");
    assert!(
        reply.text().contains("Hello alice"),
        "{what}: {}",
        reply.text()
    );
}

#[tokio::test]
async fn the_axum_program_keeps_sessions_across_a_restart_with_env_keys() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let env = [("SESSION_KEYS", KEY)];
    let app = App::spawn_in("quickstart-axum", dir.path(), &env);
    let mut browser = sign_in(&app).await;
    assert_signed_in(&mut browser, "before the restart").await;
    assert!(
        !app.output().contains("random session key"),
        "{}",
        app.output()
    );
    drop(app);

    let app = App::spawn_in("quickstart-axum", dir.path(), &env);
    let mut browser = browser.pointed_at(app.base_url());
    assert_signed_in(&mut browser, "after the restart").await;
    assert!(dir.path().join("sessions.db").is_file());
}

#[tokio::test]
async fn the_axum_program_warns_about_random_keys() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let app = App::spawn_in("quickstart-axum", dir.path(), &[]);
    let mut browser = sign_in(&app).await;
    assert_signed_in(&mut browser, "with a random key").await;
    let output = app.output();
    assert!(
        output.contains("SESSION_KEYS is not set") && output.contains("WARN"),
        "no warning about the random key: {output}"
    );
    drop(app);

    // Which the restart proves right: the cookie is refused, the browser sent to log in.
    let app = App::spawn_in("quickstart-axum", dir.path(), &[]);
    let mut browser = browser.pointed_at(app.base_url());
    let reply = browser.get("/").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
}

async fn walk(binary: &str) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let app = App::spawn_in(binary, dir.path(), &[("SESSION_KEYS", KEY)]);
    let mut phone = sign_in(&app).await;
    let mut laptop = sign_in(&app).await;
    assert_signed_in(&mut phone, binary).await;

    let page = laptop.get("/auth/account/sessions").await;
    assert_eq!(page.status, StatusCode::OK, "{binary}: {page:?}");
    assert!(
        page.text().contains("Sign out everywhere"),
        "{binary}: the sessions page"
    );
    let sessions = laptop.get("/auth/sessions").await;
    assert_eq!(
        sessions.json().as_array().map(Vec::len),
        Some(2),
        "{binary}: {sessions:?}"
    );

    // Cookie-authenticated state changes come from the app's own pages.
    let origin = app.base_url().to_owned();
    let reply = laptop
        .send(
            laptop
                .request(reqwest::Method::POST, "/logout-everywhere")
                .header("origin", &origin),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{binary}: {reply:?}");
    assert_eq!(
        reply.header("location").as_deref(),
        Some("/login"),
        "{binary}"
    );
    assert!(
        laptop.token().is_none(),
        "{binary}: the cookie was not cleared"
    );

    // The phone's session went too: a navigation lands on the login page, saying why.
    let token = phone.token().map(str::to_owned);
    let reply = phone
        .send(
            phone
                .request(reqwest::Method::GET, "/")
                .header("accept", "text/html"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{binary}: {reply:?}");
    assert_eq!(
        reply.header("location").as_deref(),
        Some("/login?return_to=%2F&reason=session_revoked"),
        "{binary}"
    );
    assert!(
        token.is_some() && phone.token().is_none(),
        "{binary}: cookie kept"
    );

    // A cross-site form cannot sign anyone out.
    let mut again = sign_in(&app).await;
    let reply = again
        .send(
            again
                .request(reqwest::Method::POST, "/logout")
                .header("origin", "https://evil.example"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{binary}: {reply:?}");
    assert_signed_in(&mut again, binary).await;
}

#[tokio::test]
async fn the_axum_program_does_what_the_readme_says() {
    walk("quickstart-axum").await;
}

#[tokio::test]
async fn the_actix_program_does_what_the_readme_says() {
    walk("quickstart-actix").await;
}
