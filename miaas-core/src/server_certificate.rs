//! A server certificate marked as a CA (`basicConstraints CA:TRUE`, which
//! `openssl req -x509` writes unless told otherwise) cannot serve HTTPS: TLS
//! clients refuse a CA certificate as a server's own (rustls says
//! `CaUsedAsEndEntity`). The server warns when it loads one, and `miaas` and the
//! agent say what is wrong and how to make a proper certificate, in the same
//! words, instead of asking whether the server runs.

/// What is wrong and how to fix it, for a person.
pub const CA_AS_SERVER_CERTIFICATE: &str = "the server's certificate is a CA certificate \
     (basicConstraints CA:TRUE, as `openssl req -x509` makes it unless told otherwise), and \
     TLS clients refuse a CA certificate as a server's own (CaUsedAsEndEntity). Give the \
     server (--tls-cert) a certificate with CA:FALSE: one signed by a CA of your own, the CA \
     last in the chain, or a self-signed one: `openssl req -x509 -newkey ec -pkeyopt \
     ec_paramgen_curve:P-256 -nodes -days 825 -keyout key.pem -out cert.pem -subj /CN=HOST \
     -addext \"subjectAltName=DNS:HOST,IP:ADDRESS\" -addext \
     \"basicConstraints=critical,CA:FALSE\"`; then send the server SIGHUP (or restart it)";

/// Whether `err` (or an error it wraps) is a client's refusal of a CA certificate
/// as the server's own.
pub fn is_ca_as_server_certificate(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(err) = cause {
        // rustls's error sits inside an io::Error, whose `source` skips it: its
        // text is where it shows
        if err.to_string().contains("CaUsedAsEndEntity")
            || format!("{err:?}").contains("CaUsedAsEndEntity")
        {
            return true;
        }
        cause = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_found_wherever_it_is_wrapped() {
        let rustls = std::io::Error::other("invalid peer certificate: CaUsedAsEndEntity");
        assert!(is_ca_as_server_certificate(&rustls));
        let other = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        assert!(!is_ca_as_server_certificate(&other));
    }
}
