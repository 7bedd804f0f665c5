//! One delivery attempt: sign, POST, read the status.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderName, HeaderValue, StatusCode};
use session_core::EventId;

use crate::encode::Encoded;
use crate::signature::{self, WebhookSecret};

/// The most of a response body the worker reads (and throws away, so that the connection
/// can be used again).
const MAX_DRAIN: usize = 64 * 1024;

const SESSION_SIGNATURE: HeaderName = HeaderName::from_static("session-signature");
const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");

/// What one attempt came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A 2xx.
    Delivered(StatusCode),
    /// Any other status.
    Refused {
        status: StatusCode,
        /// The receiver's `Retry-After`, when in seconds.
        retry_after: Option<Duration>,
    },
    /// No answer: connection refused or reset, timeout, TLS. The text names no URL.
    Unreachable(String),
    /// The request could not be built (an event id that is not a header value).
    Unsendable(&'static str),
}

/// Everything an attempt needs but the event. Not `Debug`: the URL may hold credentials.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) client: reqwest::Client,
    pub(crate) url: reqwest::Url,
    pub(crate) secrets: Arc<[WebhookSecret]>,
    pub(crate) timeout: Duration,
}

pub(crate) async fn deliver(target: Target, id: EventId, payload: Encoded) -> Outcome {
    let Ok(webhook_id) = HeaderValue::try_from(id.as_str()) else {
        return Outcome::Unsendable("the event id is not a valid header value");
    };
    let mut headers = payload.headers;
    // No secrets: an unsigned worker, whose bodies sign themselves.
    if !target.secrets.is_empty() {
        let header = signature::sign(&target.secrets, signature::unix_now(), &payload.body);
        let Ok(signature) = HeaderValue::try_from(header) else {
            return Outcome::Unsendable("the signature is not a valid header value");
        };
        headers.insert(SESSION_SIGNATURE, signature);
    }
    headers.insert(CONTENT_TYPE, payload.content_type);
    headers.insert(WEBHOOK_ID, webhook_id);
    let sent = target
        .client
        .post(target.url)
        .headers(headers)
        .body(payload.body)
        .timeout(target.timeout)
        .send()
        .await;
    let mut response = match sent {
        Ok(response) => response,
        Err(err) => return Outcome::Unreachable(describe(&err.without_url())),
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    // Read what little the receiver said, so the connection goes back to the pool; the
    // status is what counts, so a body that fails to arrive changes nothing.
    let mut drained = 0;
    while drained < MAX_DRAIN {
        match response.chunk().await {
            Ok(Some(chunk)) => drained += chunk.len(),
            Ok(None) | Err(_) => break,
        }
    }
    if status.is_success() {
        Outcome::Delivered(status)
    } else {
        Outcome::Refused {
            status,
            retry_after,
        }
    }
}

/// The error and its causes, on one line (reqwest's own text names the URL: this one,
/// made from an error stripped of it, does not).
fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "timed out".to_owned()
    } else {
        err.to_string()
    };
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
