//! The example apps' settings, from the environment (the variables of the examples'
//! contract, `examples/README.md`). Every bad value is an error naming its variable, before
//! the app listens; nothing here panics.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use session_core::{CookieConfig, KeySet, SessionConfig};
use session_selfservice::BearerToken;

/// What `SESSION_BINDING` asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Binding {
    /// No risk binding.
    #[default]
    Off,
    /// Report a change of network or browser (`session.suspicious`).
    Report,
    /// Revoke the session on a change.
    Revoke,
}

/// Single sign-on settings (`OIDC_ISSUER`, `OIDC_CLIENT_ID`, `OIDC_CLIENT_SECRET`,
/// `PUBLIC_URL`). `Debug` leaves the secret out.
#[derive(Clone)]
pub struct OidcSettings {
    /// The provider's issuer URL.
    pub issuer: String,
    /// Our client id there.
    pub client_id: String,
    /// Our client secret.
    pub client_secret: String,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Webhook settings (`WEBHOOK_URL`, `WEBHOOK_SECRET`). `Debug` leaves the secrets out.
#[derive(Clone)]
pub struct WebhookSettings {
    /// Where events are POSTed.
    pub url: String,
    /// The signing secrets (two during a rotation).
    pub secrets: Vec<String>,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}

/// The app's settings, from the environment. `Debug` prints no secret, no store
/// credentials.
#[derive(Clone)]
pub struct Settings {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The `SESSION_STORE` value.
    pub store: String,
    /// `SESSION_KEYS`, or a random key (and then `random_keys` is set).
    pub keys: KeySet,
    /// Whether the keys are random for this process.
    pub random_keys: bool,
    /// The session cookie (`__Host-session` when `Secure`).
    pub cookie: CookieConfig,
    /// The timing policy and the cap.
    pub config: SessionConfig,
    /// `ADMIN_TOKEN`.
    pub admin_token: Option<BearerToken>,
    /// `SCIM_TOKEN`.
    pub scim_token: Option<BearerToken>,
    /// `PUBLIC_URL`: the app's own origin.
    pub public_url: Option<String>,
    /// `SESSION_BINDING`.
    pub binding: Binding,
    /// Single sign-on, when configured.
    pub oidc: Option<OidcSettings>,
    /// Webhooks, when configured.
    pub webhook: Option<WebhookSettings>,
    /// CAEP `session-revoked` events, received and sent, each side when configured.
    pub caep: crate::caep::CaepSettings,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let store_kind = self.store.split("://").next().unwrap_or("memory");
        f.debug_struct("Settings")
            .field("addr", &self.addr)
            .field("store", &store_kind)
            .field("random_keys", &self.random_keys)
            .field("cookie", &self.cookie.name())
            .field("config", &self.config)
            .field("admin", &self.admin_token.is_some())
            .field("scim", &self.scim_token.is_some())
            .field("public_url", &self.public_url)
            .field("binding", &self.binding)
            .field("oidc", &self.oidc)
            .field("webhook", &self.webhook)
            .field("caep", &self.caep)
            .finish()
    }
}

fn secs(var: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<u64>, String> {
    var(name)
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .ok()
                .filter(|&s| s > 0)
                .ok_or_else(|| format!("{name}={v:?}: a whole number of seconds, at least 1"))
        })
        .transpose()
}

impl Settings {
    /// Reads the settings from the environment.
    ///
    /// # Errors
    ///
    /// One line naming the variable that is wrong, and why.
    pub fn from_env(default_port: u16) -> Result<Self, String> {
        Self::from_lookup(default_port, |name| std::env::var(name).ok())
    }

    /// As [`Settings::from_env`], reading variables through `lookup` (tests pass a list).
    ///
    /// # Errors
    ///
    /// One line naming the variable that is wrong, and why.
    pub fn from_lookup(
        default_port: u16,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let bind: IpAddr = match var("BIND") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(b) => b
                .trim()
                .parse()
                .map_err(|_| format!("BIND={b:?}: an IP address"))?,
        };
        let port: u16 = match var("PORT") {
            Some(p) => p
                .trim()
                .parse()
                .map_err(|_| format!("PORT={p:?}: a port number"))?,
            None => default_port,
        };
        let (keys, random_keys) = match var("SESSION_KEYS") {
            Some(list) => (
                KeySet::from_base64_list(&list).map_err(|e| format!("SESSION_KEYS: {e}"))?,
                false,
            ),
            None => (KeySet::random(), true),
        };
        let secure = match var("SESSION_COOKIE_SECURE").as_deref().map(str::trim) {
            None | Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(v) => return Err(format!("SESSION_COOKIE_SECURE={v:?}: true or false")),
        };
        let cookie = if secure {
            CookieConfig::new()
        } else {
            CookieConfig::new()
                .with_name("session")
                .and_then(|c| c.with_secure(false))
                .map_err(|e| format!("SESSION_COOKIE_SECURE: {e}"))?
        };
        let config = Self::config(&var)?;
        let binding = match var("SESSION_BINDING").as_deref().map(str::trim) {
            None | Some("off") => Binding::Off,
            Some("report") => Binding::Report,
            Some("revoke") => Binding::Revoke,
            Some(v) => return Err(format!("SESSION_BINDING={v:?}: off, report or revoke")),
        };
        let config =
            config.with_binding(session_core::binding::BindingPolicy::new(match binding {
                Binding::Off => session_core::binding::BindingMode::Off,
                Binding::Report => session_core::binding::BindingMode::Report,
                Binding::Revoke => session_core::binding::BindingMode::Revoke,
            }));
        let token = |name: &str| {
            var(name)
                .map(|t| {
                    BearerToken::new(&t)
                        .map_err(|_| format!("{name}: at least 32 bytes (it is {} bytes)", t.len()))
                })
                .transpose()
        };
        let public_url = match var("PUBLIC_URL") {
            None => None,
            Some(url) => {
                let trimmed = url.trim().trim_end_matches('/').to_owned();
                let ok = (trimmed.starts_with("http://") || trimmed.starts_with("https://"))
                    && !trimmed["https://".len().min(trimmed.len())..].contains('/');
                if !ok {
                    return Err(format!(
                        "PUBLIC_URL={url:?}: the app's origin, like http://127.0.0.1:3000"
                    ));
                }
                Some(trimmed)
            }
        };
        let oidc = Self::oidc(&var, public_url.is_some())?;
        let webhook = match (var("WEBHOOK_URL"), var("WEBHOOK_SECRET")) {
            (None, _) | (_, None) => None,
            (Some(url), Some(secrets)) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!("WEBHOOK_URL={url:?}: an http(s) URL"));
                }
                let secrets: Vec<String> = secrets
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                if secrets.is_empty() || secrets.len() > 2 {
                    return Err("WEBHOOK_SECRET: one secret, or two separated by a comma".into());
                }
                Some(WebhookSettings { url, secrets })
            }
        };
        let caep = crate::caep::CaepSettings::from_lookup(&var, public_url.as_deref())?;
        Ok(Self {
            addr: SocketAddr::new(bind, port),
            store: var("SESSION_STORE").unwrap_or_else(|| "memory".into()),
            keys,
            random_keys,
            cookie,
            config,
            admin_token: token("ADMIN_TOKEN")?,
            scim_token: token("SCIM_TOKEN")?,
            public_url,
            binding,
            oidc,
            webhook,
            caep,
        })
    }

    /// Single sign-on: all of `OIDC_ISSUER`, `OIDC_CLIENT_ID`, `OIDC_CLIENT_SECRET` and
    /// `PUBLIC_URL` (the redirect URI is built from it), or none of the first three. A
    /// partial set names the first missing variable, so a typo is not a silent "SSO off".
    fn oidc(
        var: &impl Fn(&str) -> Option<String>,
        has_public_url: bool,
    ) -> Result<Option<OidcSettings>, String> {
        const NAMES: [&str; 3] = ["OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"];
        let [issuer, client_id, client_secret] = NAMES.map(var);
        let (Some(issuer), Some(client_id), Some(client_secret)) =
            (&issuer, &client_id, &client_secret)
        else {
            let given = [&issuer, &client_id, &client_secret];
            return match given.iter().position(|v| v.is_none()) {
                Some(_) if given.iter().all(|v| v.is_none()) => Ok(None),
                Some(missing) => Err(format!(
                    "{}: required with {} (set OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET and PUBLIC_URL, or none)",
                    NAMES[missing],
                    NAMES
                        .iter()
                        .zip(given)
                        .filter(|(_, v)| v.is_some())
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                None => Ok(None),
            };
        };
        if !has_public_url {
            return Err("PUBLIC_URL: required with OIDC_ISSUER (the redirect URI is PUBLIC_URL/oidc/callback)".into());
        }
        let issuer = issuer.trim().to_owned();
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(format!("OIDC_ISSUER={issuer:?}: an http(s) URL"));
        }
        Ok(Some(OidcSettings {
            issuer,
            client_id: client_id.trim().to_owned(),
            client_secret: client_secret.clone(),
        }))
    }

    /// The timing policy: each variable checked alone, then together, naming the variables.
    fn config(var: &impl Fn(&str) -> Option<String>) -> Result<SessionConfig, String> {
        let ttl = secs(var, "SESSION_TTL_SECS")?.unwrap_or(604_800);
        let idle = secs(var, "SESSION_IDLE_SECS")?;
        let cache = var("SESSION_CACHE_SECS")
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("SESSION_CACHE_SECS={v:?}: a whole number of seconds"))
            })
            .transpose()?;
        let max = 100 * 365 * 86_400;
        if ttl > max {
            return Err(format!("SESSION_TTL_SECS={ttl}: at most {max} (100 years)"));
        }
        if let Some(idle) = idle
            && idle > ttl
        {
            return Err(format!(
                "SESSION_IDLE_SECS={idle}: longer than the lifetime, SESSION_TTL_SECS={ttl}"
            ));
        }
        if let Some(cache) = cache
            && cache > ttl
        {
            return Err(format!(
                "SESSION_CACHE_SECS={cache}: longer than the lifetime, SESSION_TTL_SECS={ttl}"
            ));
        }
        let cap = match var("SESSION_MAX_PER_USER") {
            None => 100,
            Some(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("SESSION_MAX_PER_USER={v:?}: a whole number, at least 1"))?,
        };
        let mut config = SessionConfig::new()
            .with_ttl(Duration::from_secs(ttl))
            .map_err(|e| format!("SESSION_TTL_SECS: {e}"))?
            .with_max_user_sessions(Some(cap));
        if let Some(idle) = idle {
            config = config
                .with_idle_timeout(Duration::from_secs(idle))
                .map_err(|e| format!("SESSION_IDLE_SECS: {e}"))?;
        }
        if let Some(cache) = cache {
            config = config.with_cache_ttl(Duration::from_secs(cache));
        }
        config
            .validate()
            .map_err(|e| format!("SESSION_* settings: {e}"))?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Settings, String> {
        Settings::from_lookup(3000, |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn bad_settings_name_their_variable() {
        let cases: [(&[(&str, &str)], &str); 17] = [
            (&[("PORT", "x")], "PORT"),
            (&[("BIND", "localhost:1")], "BIND"),
            (&[("SESSION_TTL_SECS", "-5")], "SESSION_TTL_SECS"),
            (
                &[("SESSION_TTL_SECS", "99999999999999999999")],
                "SESSION_TTL_SECS",
            ),
            (
                &[("SESSION_CACHE_SECS", "900"), ("SESSION_TTL_SECS", "60")],
                "SESSION_CACHE_SECS",
            ),
            (
                &[("SESSION_IDLE_SECS", "120"), ("SESSION_TTL_SECS", "60")],
                "SESSION_IDLE_SECS",
            ),
            (&[("SESSION_KEYS", "short")], "SESSION_KEYS"),
            (&[("ADMIN_TOKEN", "too-short")], "ADMIN_TOKEN"),
            (&[("SESSION_MAX_PER_USER", "0")], "SESSION_MAX_PER_USER"),
            (&[("SESSION_BINDING", "maybe")], "SESSION_BINDING"),
            (&[("SESSION_COOKIE_SECURE", "yes")], "SESSION_COOKIE_SECURE"),
            (&[("OIDC_ISSUER", "https://idp.example")], "OIDC_CLIENT_ID"),
            (
                &[
                    ("OIDC_ISSUER", "https://idp.example"),
                    ("OIDC_CLIENT_ID", "app"),
                ],
                "OIDC_CLIENT_SECRET",
            ),
            (
                &[
                    ("OIDC_ISSUER", "https://idp.example"),
                    ("OIDC_CLIENT_ID", "app"),
                    ("OIDC_CLIENT_SECRET", "s3cret"),
                ],
                "PUBLIC_URL",
            ),
            (&[("SCIM_TOKEN", "short")], "SCIM_TOKEN"),
            (
                &[("CAEP_AUDIENCE", "https://app.example")],
                "CAEP_TRANSMITTER_ISSUER",
            ),
            (
                &[
                    ("CAEP_RECEIVER_URL", "https://rp.example/caep"),
                    ("CAEP_SIGNING_KEY", "not a key"),
                    ("PUBLIC_URL", "http://127.0.0.1:3000"),
                ],
                "CAEP_SIGNING_KEY",
            ),
        ];
        for (vars, name) in cases {
            let err = parse(vars).expect_err(name);
            assert!(err.contains(name), "{name}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn defaults_and_the_host_prefix() {
        let s = parse(&[]).unwrap();
        assert!(s.random_keys);
        assert_eq!(s.cookie.name(), "__Host-session");
        assert_eq!(s.config.cache_ttl(), Duration::from_secs(30));
        let short = parse(&[
            ("SESSION_TTL_SECS", "10"),
            ("SESSION_COOKIE_SECURE", "false"),
        ])
        .unwrap();
        assert_eq!(
            short.config.cache_ttl(),
            Duration::from_secs(10),
            "capped at the lifetime"
        );
        assert_eq!(short.cookie.name(), "session");
    }

    const ED25519_KEY: &str = include_str!("../../../session-idp/tests/keys/ed1.pem");

    #[test]
    fn debug_prints_no_secret() {
        let s = parse(&[
            ("ADMIN_TOKEN", "admin-token-admin-token-admin-token-42"),
            ("SESSION_STORE", "redis://:hunter2@127.0.0.1:6379"),
            ("WEBHOOK_URL", "http://127.0.0.1:9/hook"),
            ("WEBHOOK_SECRET", "whsec-secret"),
            ("SCIM_TOKEN", "scim-token-scim-token-scim-token-0042"),
            ("OIDC_ISSUER", "https://idp.example"),
            ("OIDC_CLIENT_ID", "app"),
            ("OIDC_CLIENT_SECRET", "oidc-client-s3cret"),
            ("PUBLIC_URL", "http://127.0.0.1:3000"),
            ("CAEP_RECEIVER_URL", "https://rp.example/caep"),
            ("CAEP_SIGNING_KEY", ED25519_KEY),
        ])
        .unwrap();
        assert!(s.caep.sender.is_some());
        let debug = format!("{s:?}");
        for secret in [
            "admin-token",
            "hunter2",
            "whsec-secret",
            "scim-token",
            "oidc-client-s3cret",
            "PRIVATE KEY",
            "MC4CAQAw",
        ] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }
}
