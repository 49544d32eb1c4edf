//! Forward-proxy test helpers: a test CA on disk, errgate with a `forward_proxy` section, a raw
//! proxy client, and raw TCP servers that record every connection (to prove what was, and was
//! not, connected to). Everything on 127.0.0.1; every thread and process stops on drop.

use super::{free_port, Gate, GateConfig};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A CA written to `dir` as `ca.pem` and `ca.key`.
pub struct TestCa {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub key_pem: String,
}

/// Generates a CA (ECDSA P-256) in `dir`.
pub fn test_ca(dir: &Path) -> TestCa {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "errgate egress test CA");
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let key = rcgen::KeyPair::generate().expect("ca key");
    let cert = p.self_signed(&key).expect("ca cert");
    let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
    std::fs::write(&cert_path, cert.pem()).expect("write ca.pem");
    let key_pem = key.serialize_pem();
    std::fs::write(&key_path, &key_pem).expect("write ca.key");
    TestCa {
        cert: cert_path,
        key: key_path,
        key_pem,
    }
}

/// errgate with a forward proxy.
pub struct ProxyGate {
    pub gate: Gate,
    /// The forward-proxy port.
    pub proxy: u16,
}

/// Whether [`start_proxy_gate`] writes a CA into the gateway's directory and intercepts TLS.
pub const INTERCEPT: bool = true;
/// See [`INTERCEPT`].
pub const NO_INTERCEPT: bool = false;

/// Starts errgate on `cfg` with a `forward_proxy` section: the keys in `forward_proxy` plus a
/// free `listen` port, and with `intercept`, a `tls_intercept` CA generated in the gateway's
/// directory (`ca.pem`, `ca.key`).
pub fn start_proxy_gate(cfg: GateConfig, forward_proxy: Value, intercept: bool) -> ProxyGate {
    let mut last = String::new();
    for _ in 0..4 {
        let proxy = free_port();
        let mut section = forward_proxy.clone();
        section["listen"] = json!(format!("127.0.0.1:{proxy}"));
        let cfg = cfg.clone();
        // Another test can take the proxy port too: errgate then fails to start, try again.
        let gate = match std::panic::catch_unwind(move || {
            GateConfig::start_with(move |dir| {
                if intercept {
                    let ca = test_ca(dir);
                    section["tls_intercept"] =
                        json!({"ca_cert_file": ca.cert, "ca_key_file": ca.key});
                }
                cfg.set("forward_proxy", section)
            })
        }) {
            Ok(g) => g,
            Err(e) => {
                last = e
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| "errgate did not start".into());
                continue;
            }
        };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if TcpStream::connect(("127.0.0.1", proxy)).is_ok() {
                return ProxyGate { gate, proxy };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        last = format!("forward proxy not listening; log:\n{}", gate.log_text());
    }
    panic!("errgate with a forward proxy did not start: {last}");
}

/// A proxy response head and whatever came after it.
pub struct ProxyAnswer {
    pub status: u16,
    pub head: String,
    pub rest: Vec<u8>,
    /// The connection, still open (after a 200 to CONNECT: the tunnel).
    pub stream: TcpStream,
}

impl ProxyAnswer {
    /// The body as JSON (the whole rest, for `Connection: close` answers read to EOF).
    pub fn json(&mut self) -> serde_json::Value {
        let _ = self.stream.read_to_end(&mut self.rest);
        serde_json::from_slice(&self.rest)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.rest)))
    }
}

/// Sends `raw` to the proxy and reads the response head.
pub fn proxy_send(proxy: u16, raw: &[u8]) -> ProxyAnswer {
    let mut s = TcpStream::connect(("127.0.0.1", proxy)).expect("connect proxy");
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    s.write_all(raw).expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = s.read(&mut chunk).expect("read proxy answer");
        assert!(
            n > 0,
            "proxy closed before a response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    ProxyAnswer {
        status,
        head,
        rest: buf[end..].to_vec(),
        stream: s,
    }
}

/// A raw TCP server on 127.0.0.1 that counts connections and records every byte received;
/// with `echo`, it writes each chunk back.
pub struct RawServer {
    pub port: u16,
    pub accepted: Arc<AtomicUsize>,
    pub received: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
}

impl RawServer {
    pub fn start(echo: bool) -> RawServer {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind raw server");
        let port = l.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, r, st) = (accepted.clone(), received.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(15)));
                    let mut chunk = [0u8; 4096];
                    while let Ok(n) = conn.read(&mut chunk) {
                        if n == 0 {
                            break;
                        }
                        r.lock().expect("lock").extend_from_slice(&chunk[..n]);
                        if echo && conn.write_all(&chunk[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        RawServer {
            port,
            accepted,
            received,
            stop,
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<u8> {
        self.received.lock().expect("lock").clone()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so the thread ends.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
