//! The names and addresses --tls auto's server certificate holds, and reading
//! them back from a PEM chain.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The names and addresses the first certificate of `chain` holds.
pub(super) fn names_of(chain: &str) -> (BTreeSet<String>, BTreeSet<IpAddr>) {
    let (mut dns, mut ips) = (BTreeSet::new(), BTreeSet::new());
    let Some((leaf, _)) = split_chain(chain) else {
        return (dns, ips);
    };
    let Ok((_, certificate)) = x509_parser::parse_x509_certificate(&leaf) else {
        return (dns, ips);
    };
    if let Ok(Some(names)) = certificate.subject_alternative_name() {
        for name in &names.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(n) => {
                    dns.insert(n.to_ascii_lowercase());
                }
                x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                    ips.extend(ip_of(bytes));
                }
                _ => {}
            }
        }
    }
    (dns, ips)
}

fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// The certificates of a PEM chain: the first, and the last as DER.
pub(super) fn split_chain(chain: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let all: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain.as_bytes())
        .collect::<Result<_, _>>()
        .ok()?;
    Some((all.first()?.to_vec(), all.last()?.to_vec()))
}

pub(super) fn der_of(pem: &str) -> Option<Vec<u8>> {
    split_chain(pem).map(|(first, _)| first)
}

/// The addresses a listener on `ip` answers on: every interface's for an
/// unspecified address (with the loopbacks), else that one.
pub(super) fn listening_addresses(ip: IpAddr) -> BTreeSet<IpAddr> {
    let mut all = BTreeSet::from([IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    if ip.is_unspecified() {
        if ip.is_ipv6() {
            all.insert(IpAddr::V6(Ipv6Addr::LOCALHOST));
        }
        if let Ok(interfaces) = if_addrs::get_if_addrs() {
            all.extend(
                interfaces
                    .iter()
                    .map(|i| i.ip())
                    .filter(|ip| ip.is_ipv4() || !is_link_local_v6(ip)),
            );
        }
    } else {
        all.insert(ip);
    }
    all
}

fn is_link_local_v6(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

/// This machine's host name, if it has one.
pub(super) fn host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty() && name.parse::<IpAddr>().is_err())
}
