//! Certificates for intercepted hosts, issued on the fly from the operator's CA and cached.
//!
//! The CA key is read once at start ([`Minter::load`]) and kept in memory only; it is never
//! logged (`Minter`'s `Debug` omits it). Each minted leaf has its own fresh ECDSA P-256 key, is
//! valid from an hour before minting for [`LEAF_VALIDITY`], and is re-minted once it is older
//! than [`REMINT_AFTER`]. The cache holds at most `max_entries` hosts; when full, the oldest
//! minted entry is evicted. Time is a parameter.

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Default most minted certificates kept: one per intercepted host; routes are few.
pub const DEFAULT_MAX_CERTS: usize = 1000;
/// Lifetime of a minted leaf: short, since it is re-minted from the CA at no cost.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);
/// Age after which a cached leaf is replaced, well before it expires.
pub const REMINT_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Backdating of `notBefore`, for clients whose clock is a little behind.
const BACKDATE: Duration = Duration::from_secs(3600);

/// Why the CA could not be loaded or a certificate not minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// A CA file could not be read.
    #[error("cannot read {file}: {error}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The CA certificate is not a PEM certificate rcgen can issue from.
    #[error("{file}: not a usable PEM CA certificate: {error}")]
    CaCert {
        /// The file.
        file: String,
        /// Why.
        error: rcgen::Error,
    },
    /// The CA key is not a PEM (PKCS#8, SEC1 or PKCS#1) private key (the key's text is not shown).
    #[error("{file}: not a usable PEM private key: {error}")]
    CaKey {
        /// The file.
        file: String,
        /// Why.
        error: rcgen::Error,
    },
    /// Issuing or installing a leaf failed.
    #[error("cannot issue a certificate for {host}: {why}")]
    Issue {
        /// The host.
        host: String,
        /// Why.
        why: String,
    },
}

struct Cached {
    config: Arc<ServerConfig>,
    minted: SystemTime,
}

/// The CA and the cache of per-host TLS server configs.
pub struct Minter {
    ca_params: CertificateParams,
    ca_key: KeyPair,
    ca_der: CertificateDer<'static>,
    max_entries: usize,
    cache: Mutex<HashMap<String, Cached>>,
}

impl fmt::Debug for Minter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Minter")
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

// === impl Minter ===

impl Minter {
    /// Reads the CA certificate and key files once.
    pub fn load(cert_file: &str, key_file: &str, max_entries: usize) -> Result<Minter, MintError> {
        let read = |file: &str| {
            std::fs::read_to_string(file).map_err(|error| MintError::Read {
                file: file.to_string(),
                error,
            })
        };
        let cert_pem = read(cert_file)?;
        let key_pem = read(key_file)?;
        Minter::from_pem(&cert_pem, cert_file, &key_pem, key_file, max_entries)
    }

    /// Builds a minter from PEM texts (the file names are for messages only).
    pub fn from_pem(
        cert_pem: &str,
        cert_file: &str,
        key_pem: &str,
        key_file: &str,
        max_entries: usize,
    ) -> Result<Minter, MintError> {
        let ca_params =
            CertificateParams::from_ca_cert_pem(cert_pem).map_err(|error| MintError::CaCert {
                file: cert_file.to_string(),
                error,
            })?;
        let ca_der = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| MintError::CaCert {
                file: cert_file.to_string(),
                error: rcgen::Error::CouldNotParseCertificate,
            })?;
        // rcgen's message never contains key material.
        let ca_key = KeyPair::from_pem(key_pem).map_err(|error| MintError::CaKey {
            file: key_file.to_string(),
            error,
        })?;
        Ok(Minter {
            ca_params,
            ca_key,
            ca_der,
            max_entries: max_entries.max(1),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The TLS server config presenting a certificate for `host` (minted now if not cached or
    /// too old). ALPN offers only `http/1.1`.
    pub fn server_config(
        &self,
        host: &str,
        now: SystemTime,
    ) -> Result<Arc<ServerConfig>, MintError> {
        let host = host.to_ascii_lowercase();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.get(&host) {
            let age = now.duration_since(c.minted).unwrap_or(Duration::ZERO);
            if age < REMINT_AFTER {
                return Ok(c.config.clone());
            }
        }
        let config = Arc::new(self.mint(&host, now)?);
        if !cache.contains_key(&host) && cache.len() >= self.max_entries {
            if let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, c)| c.minted)
                .map(|(h, _)| h.clone())
            {
                cache.remove(&oldest);
            }
        }
        cache.insert(
            host,
            Cached {
                config: config.clone(),
                minted: now,
            },
        );
        Ok(config)
    }

    /// Number of cached certificates.
    pub fn cached(&self) -> usize {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn mint(&self, host: &str, now: SystemTime) -> Result<ServerConfig, MintError> {
        let issue = |why: String| MintError::Issue {
            host: host.to_string(),
            why,
        };
        let mut params =
            CertificateParams::new(vec![host.to_string()]).map_err(|e| issue(e.to_string()))?;
        params.distinguished_name.push(DnType::CommonName, host);
        params.not_before = (now - BACKDATE).into();
        params.not_after = (now + LEAF_VALIDITY).into();
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let leaf_key = KeyPair::generate().map_err(|e| issue(e.to_string()))?;
        let issuer = self
            .ca_params
            .clone()
            .self_signed(&self.ca_key)
            .map_err(|e| issue(e.to_string()))?;
        let leaf = params
            .signed_by(&leaf_key, &issuer, &self.ca_key)
            .map_err(|e| issue(e.to_string()))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| issue(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone(), self.ca_der.clone()], key)
            .map_err(|e| issue(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_ca() -> (String, String) {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, "errgate test CA");
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("key");
        let cert = p.self_signed(&key).expect("ca");
        (cert.pem(), key.serialize_pem())
    }

    fn minter(max: usize) -> Minter {
        let (c, k) = test_ca();
        Minter::from_pem(&c, "ca.pem", &k, "ca.key", max).expect("minter")
    }

    #[test]
    fn cache_is_bounded_and_evicts_the_oldest() {
        let m = minter(2);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let a = m.server_config("a.example", t0).expect("a");
        m.server_config("b.example", t0 + Duration::from_secs(1))
            .expect("b");
        assert_eq!(m.cached(), 2);
        // A hit returns the same config.
        let a2 = m
            .server_config("A.example", t0 + Duration::from_secs(2))
            .expect("a again");
        assert!(Arc::ptr_eq(&a, &a2));
        m.server_config("c.example", t0 + Duration::from_secs(3))
            .expect("c");
        assert_eq!(m.cached(), 2);
        // a was the oldest minted: it is minted anew.
        let a3 = m
            .server_config("a.example", t0 + Duration::from_secs(4))
            .expect("a3");
        assert!(!Arc::ptr_eq(&a, &a3));
        assert_eq!(m.cached(), 2);
    }

    #[test]
    fn old_certificates_are_reminted() {
        let m = minter(10);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let a = m.server_config("a.example", t0).expect("a");
        let same = m.server_config("a.example", t0 + REMINT_AFTER - Duration::from_secs(1));
        assert!(Arc::ptr_eq(&a, &same.expect("same")));
        let fresh = m
            .server_config("a.example", t0 + REMINT_AFTER)
            .expect("fresh");
        assert!(!Arc::ptr_eq(&a, &fresh));
        assert_eq!(m.cached(), 1);
    }

    #[test]
    fn bad_ca_files_are_errors_without_key_text() {
        let (c, k) = test_ca();
        let err = Minter::from_pem("not pem", "ca.pem", &k, "ca.key", 1).expect_err("bad cert");
        assert!(err.to_string().contains("ca.pem"));
        let garbled = k.replace("PRIVATE KEY-----\n", "PRIVATE KEY-----\nAAAA");
        let err = Minter::from_pem(&c, "ca.pem", &garbled, "ca.key", 1).expect_err("bad key");
        let msg = err.to_string();
        assert!(msg.contains("ca.key"), "{msg}");
        assert!(!msg.contains("AAAA"), "{msg}");
        assert!(!format!("{:?}", minter(1)).contains("PRIVATE"));
    }

    #[test]
    fn minted_leaf_names_the_host_and_offers_only_http11() {
        let m = minter(4);
        let cfg = m
            .server_config(
                "api.pluralkit.me",
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            )
            .expect("cfg");
        assert_eq!(cfg.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
