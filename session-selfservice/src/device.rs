//! Naming a device from its `User-Agent`: "Firefox 128 on Ubuntu", with the uap-core
//! regexes (Apache-2.0, `data/uap-regexes.json`, converted once from uap-core 0.18's
//! `regexes.yaml`) and the maintained `ua-parser` crate. The parser is built once, on first
//! use.

use std::sync::OnceLock;

fn extractor() -> Option<&'static ua_parser::Extractor<'static>> {
    static EXTRACTOR: OnceLock<Option<ua_parser::Extractor<'static>>> = OnceLock::new();
    EXTRACTOR_READY.get_or_init(|| ());
    EXTRACTOR
        .get_or_init(|| {
            let regexes: ua_parser::Regexes<'static> =
                serde_json::from_str(include_str!("../data/uap-regexes.json"))
                    .inspect_err(|e| tracing::error!(error = %e, "bad user-agent data"))
                    .ok()?;
            ua_parser::Extractor::try_from(regexes)
                .inspect_err(|e| tracing::error!(error = %e, "bad user-agent regexes"))
                .ok()
        })
        .as_ref()
}

/// Builds the parser on a background thread now, so the first page does not wait for it
/// (about a second in a debug build).
pub fn warm_up() {
    if EXTRACTOR_READY.get().is_none() {
        std::thread::spawn(|| {
            extractor();
        });
    }
}

static EXTRACTOR_READY: OnceLock<()> = OnceLock::new();

/// A short description of the browser and OS, e.g. `Chrome 120 on Windows`; the raw string
/// (shortened) when nothing is recognised, `Unknown device` when there is none.
#[must_use]
pub fn describe(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|u| !u.trim().is_empty()) else {
        return "Unknown device".into();
    };
    let Some(extractor) = extractor() else {
        return shorten(ua);
    };
    let browser = extractor.ua.extract(ua).map(|b| match b.major {
        Some(major) => format!("{} {major}", b.family),
        None => b.family.to_string(),
    });
    let os = extractor.os.extract(ua).map(|o| match &*o.os {
        "Mac OS X" => "macOS".to_owned(),
        other => other.to_owned(),
    });
    match (browser, os) {
        (Some(b), Some(o)) if b != "Other" && o != "Other" => format!("{b} on {o}"),
        (Some(b), _) if b != "Other" => b,
        (_, Some(o)) if o != "Other" => format!("Unknown browser on {o}"),
        _ => shorten(ua),
    }
}

fn shorten(ua: &str) -> String {
    const MAX: usize = 60;
    match ua.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &ua[..i]),
        None => ua.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn names_common_browsers() {
        assert_eq!(
            describe(Some(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
            )),
            "Chrome 120 on Windows"
        );
        assert_eq!(
            describe(Some(
                "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
            )),
            "Firefox 128 on Ubuntu"
        );
        assert_eq!(
            describe(Some(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
            )),
            "Mobile Safari 17 on iOS"
        );
        assert_eq!(describe(None), "Unknown device");
        assert_eq!(describe(Some("curl/8.5.0")), "curl 8");
        assert_eq!(describe(Some("<script>x</script>")), "<script>x</script>");
    }
}
