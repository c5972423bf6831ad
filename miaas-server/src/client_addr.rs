//! The client's address, for limits and logs: the TCP peer, unless the peer is a
//! trusted proxy (`--trusted-proxies`), in which case the address it forwarded in
//! `Forwarded` or `X-Forwarded-For`. From anyone else those headers are ignored, so
//! a client cannot choose the address it is counted under.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// The client's address as this server judges it, in every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    /// Trusts the peers in `networks`.
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks.into())
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`: the peer itself unless it is trusted; then the
    /// nearest forwarded address that is not a trusted proxy (the header is read
    /// from the right, as each proxy appends the address it saw).
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let chain = forwarded_chain(headers);
        let mut client = peer;
        for hop in chain.iter().rev() {
            client = canonical(*hop);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The forwarded addresses, nearest client first: `Forwarded: for=` when given,
/// else `X-Forwarded-For`. Entries that are not addresses (`unknown`, obfuscated
/// names) end the chain there.
fn forwarded_chain(headers: &HeaderMap) -> Vec<IpAddr> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return addresses(
            forwarded
                .iter()
                .flat_map(|v| v.split(','))
                .filter_map(|element| {
                    element.split(';').find_map(|pair| {
                        let (key, value) = pair.split_once('=')?;
                        key.trim()
                            .eq_ignore_ascii_case("for")
                            .then(|| value.trim().trim_matches('"'))
                    })
                }),
        );
    }
    addresses(
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim),
    )
}

fn addresses<'a>(entries: impl Iterator<Item = &'a str>) -> Vec<IpAddr> {
    let parsed: Vec<Option<IpAddr>> = entries.map(parse_node).collect();
    // only the part after the last entry that is not an address can be trusted
    let start = parsed
        .iter()
        .rposition(Option::is_none)
        .map_or(0, |i| i + 1);
    parsed[start..].iter().flatten().copied().collect()
}

/// `10.0.0.1`, `10.0.0.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711`, `2001:db8::1`.
fn parse_node(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    text.strip_prefix('[')?.split(']').next()?.parse().ok()
}

/// The middleware: puts the [`ClientAddr`] in the request's extensions.
pub async fn resolve_client(
    State(proxies): State<TrustedProxies>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        let client = proxies.client_of(peer.ip(), request.headers());
        request.extensions_mut().insert(ClientAddr(client));
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let proxies = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let forged = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(
            proxies.client_of(ip("203.0.113.9"), &forged),
            ip("203.0.113.9")
        );
        assert_eq!(proxies.client_of(ip("10.0.0.5"), &forged), ip("1.2.3.4"));
        let none = TrustedProxies::default();
        assert_eq!(none.client_of(ip("10.0.0.5"), &forged), ip("10.0.0.5"));
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        // the client forged the first entry; the proxy appended what it saw
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(
            proxies.client_of(ip("10.0.0.1"), &chain),
            ip("198.51.100.7")
        );
        let forwarded = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https",
        )]);
        assert_eq!(
            proxies.client_of(ip("::ffff:10.0.0.1"), &forwarded),
            ip("2001:db8::7")
        );
        let obfuscated = headers(&[("forwarded", "for=198.51.100.7, for=_hidden")]);
        assert_eq!(
            proxies.client_of(ip("10.0.0.1"), &obfuscated),
            ip("10.0.0.1")
        );
    }
}
