//! The server certificate, re-read from disk when it changes: cert-manager
//! (or any rotation) replaces the files and the next TLS handshake is served
//! with the new certificate, with no restart and no dropped connection.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use rustls::{
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};

use super::watched_file::FileStamp;

struct Loaded {
    key: Arc<CertifiedKey>,
    stamps: (FileStamp, FileStamp),
}

/// A [`ResolvesServerCert`] over a PEM certificate chain and key on disk.
/// Each handshake stats both files (two cheap syscalls, next to a handshake's
/// public-key operations) and reloads them when either changed. A pair that
/// cannot be loaded (half-written, key not matching the certificate) is
/// logged and the previous certificate keeps being served.
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<Loaded>,
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Loads the pair once; an error here stops startup.
    pub fn load(
        cert_path: &Path,
        key_path: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, String> {
        let loaded = load_pair(cert_path, key_path, &provider)?;
        Ok(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            current: Mutex::new(loaded),
        })
    }

    fn current_key(&self) -> Arc<CertifiedKey> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let stamps = (
            FileStamp::of(&self.cert_path),
            FileStamp::of(&self.key_path),
        );
        if let (Ok(cert), Ok(key)) = stamps
            && (cert, key) != current.stamps
        {
            match load_pair(&self.cert_path, &self.key_path, &self.provider) {
                Ok(loaded) => {
                    tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded");
                    *current = loaded;
                }
                Err(err) => {
                    tracing::error!(error = %err, "TLS certificate changed but cannot be loaded; still serving the previous one");
                    // Not retried until the files change again.
                    current.stamps = (cert, key);
                }
            }
        }
        Arc::clone(&current.key)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current_key())
    }
}

fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<Loaded, String> {
    // Stamps first: a file replaced while we read it is read again next time.
    let stamps = (
        FileStamp::of(cert_path).map_err(|err| format!("{}: {err}", cert_path.display()))?,
        FileStamp::of(key_path).map_err(|err| format!("{}: {err}", key_path.display()))?,
    );
    let chain = read_certificates(cert_path)?;
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|err| format!("{}: no PEM private key ({err})", key_path.display()))?;
    let key = CertifiedKey::from_der(chain, key, provider).map_err(|err| {
        format!(
            "{} does not fit {}: {err}",
            key_path.display(),
            cert_path.display()
        )
    })?;
    Ok(Loaded {
        key: Arc::new(key),
        stamps,
    })
}

/// Every certificate in a PEM file, in order; at least one.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| format!("{}: {err}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate", path.display()));
    }
    Ok(certs)
}
