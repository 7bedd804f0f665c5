//! [`RequestHead`]: what the gate reads from a request, whatever the framework.

use std::net::IpAddr;

use http::HeaderValue;

/// The client's IP address, as a request extension: what risk binding compares. The
/// actix adapter and the route table know the peer themselves; with axum, `session-tower`
/// takes it from `ConnectInfo<SocketAddr>` (serve with
/// `into_make_service_with_connect_info`). Behind a reverse proxy, insert the address
/// your proxy vouches for (from `X-Forwarded-For`, say) in a layer of your own before the
/// session layer: it wins over the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// What the gate needs to read from a request, whatever the framework. Implemented for
/// `http::Request` here; `session-actix` implements it for actix's request.
pub trait RequestHead {
    /// The raw values of every header named `name` (lowercase).
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]>;
    /// The method, as requested (`GET`, `POST`, …).
    fn method(&self) -> &str;
    /// The path and query, as requested.
    fn path_and_query(&self) -> &str;
    /// The authority the request was sent to: the `Host` header, or the URI's authority
    /// (HTTP/2).
    fn authority(&self) -> Option<&[u8]> {
        self.header_values("host").next()
    }

    /// The client's IP address, when known (see [`ClientIp`]).
    fn client_ip(&self) -> Option<IpAddr> {
        None
    }

    /// Whether the method is `GET` or `HEAD`.
    fn is_get(&self) -> bool {
        matches!(self.method(), "GET" | "HEAD")
    }

    /// Whether the method may change state: anything but `GET`, `HEAD`, `OPTIONS` and
    /// `TRACE`.
    fn changes_state(&self) -> bool {
        !matches!(self.method(), "GET" | "HEAD" | "OPTIONS" | "TRACE")
    }

    /// The first value of header `name`.
    fn first_header(&self, name: &'static str) -> Option<&[u8]> {
        self.header_values(name).next()
    }
}

impl<B> RequestHead for http::Request<B> {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        use http::header;
        // The names the gate asks for every request, as constants: no parsing per lookup.
        let name = match name {
            "cookie" => header::COOKIE,
            "authorization" => header::AUTHORIZATION,
            "accept" => header::ACCEPT,
            "host" => header::HOST,
            "origin" => header::ORIGIN,
            other => http::HeaderName::from_static(other),
        };
        self.headers()
            .get_all(name)
            .into_iter()
            .map(HeaderValue::as_bytes)
    }

    fn method(&self) -> &str {
        self.method().as_str()
    }

    fn path_and_query(&self) -> &str {
        self.uri()
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str)
    }

    fn client_ip(&self) -> Option<IpAddr> {
        self.extensions().get::<ClientIp>().map(|c| c.0)
    }

    fn authority(&self) -> Option<&[u8]> {
        self.headers()
            .get(http::header::HOST)
            .map(HeaderValue::as_bytes)
            .or_else(|| self.uri().authority().map(|a| a.as_str().as_bytes()))
    }
}
