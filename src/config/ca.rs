//! The load step after validation: reads each route's `tls_ca_file` into [`TrustedCa`], so a
//! bad file is a config problem at load, never a failure on the request path.

use super::{Config, TrustedCa};
use crate::diagnostic::{Diagnostic, Diagnostics};
use std::collections::HashMap;

/// Reads every `(route position, tls_ca_file)` named by the file, whether or not the rest of
/// it is valid (so `check` reports them in the same run), then fills `upstream.ca` of each
/// route of `config` when there is one. Every unreadable or invalid file is reported with its
/// route's path.
pub(super) fn load_trusted_cas(
    file: &str,
    ca_files: &[(usize, String)],
    config: Option<&mut Config>,
) -> Result<(), Diagnostics> {
    let mut errs = Vec::new();
    let mut loaded = HashMap::new();
    for (index, path) in ca_files {
        match load_ca_file(path) {
            Ok(ca) => {
                loaded.insert(*index, ca);
            }
            Err(m) => errs.push(Diagnostic::new(
                file,
                format!("routes[{index}].tls_ca_file"),
                m,
            )),
        }
    }
    if !errs.is_empty() {
        return Err(Diagnostics(errs));
    }
    if let Some(config) = config {
        for r in config.routes.iter_mut() {
            r.upstream.ca = loaded.remove(&r.index);
        }
    }
    Ok(())
}

/// Reads a PEM file of CA certificates, checking each parses as X.509 (Pingora's wrapper
/// panics on bad DER, so nothing unchecked may reach it).
fn load_ca_file(path: &str) -> Result<TrustedCa, String> {
    use pingora::utils::tls::WrappedX509;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let pem = std::fs::read(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
    let mut ders = Vec::new();
    // Only CERTIFICATE sections; other PEM sections (a key, say) are skipped.
    for item in CertificateDer::pem_slice_iter(&pem) {
        let der = item.map_err(|e| format!("`{path}` is not valid PEM: {e}"))?;
        x509_parser::parse_x509_certificate(der.as_ref())
            .map_err(|e| format!("`{path}` holds a certificate that does not parse: {e}"))?;
        ders.push(der.as_ref().to_vec());
    }
    if ders.is_empty() {
        return Err(format!("`{path}` holds no PEM certificate"));
    }
    let certs: Vec<WrappedX509> = ders
        .into_iter()
        .map(|d| WrappedX509::new(d, pingora::utils::tls::parse_x509))
        .collect();
    Ok(TrustedCa {
        file: path.to_string(),
        certs: std::sync::Arc::from(certs.into_boxed_slice()),
    })
}

#[cfg(test)]
mod pem_tests {
    use super::load_ca_file;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    }

    #[test]
    fn loads_certificates_and_skips_other_sections() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = rcgen::generate_simple_self_signed(vec!["a.test".into()]).expect("cert");
        let b = rcgen::generate_simple_self_signed(vec!["b.test".into()]).expect("cert");
        let text = format!(
            "{}{}{}",
            a.cert.pem(),
            a.key_pair.serialize_pem(),
            b.cert.pem()
        );
        let ca = load_ca_file(&write(&dir, "ca.pem", &text)).expect("loads");
        assert_eq!(ca.certs.len(), 2);
    }

    #[test]
    fn rejects_empty_broken_and_unparsable_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = load_ca_file(&write(&dir, "empty.pem", "no pem here\n")).expect_err("empty");
        assert!(e.contains("no PEM certificate"), "{e}");
        let broken = "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n";
        let e = load_ca_file(&write(&dir, "broken.pem", broken)).expect_err("broken");
        assert!(e.contains("not valid PEM"), "{e}");
        let junk = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        let e = load_ca_file(&write(&dir, "junk.pem", junk)).expect_err("junk");
        assert!(e.contains("does not parse"), "{e}");
        let e = load_ca_file(&dir.path().join("missing.pem").display().to_string())
            .expect_err("missing");
        assert!(e.contains("cannot read"), "{e}");
    }
}
