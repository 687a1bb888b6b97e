//! Reading PEM files: certificate chains and private keys.

use std::path::Path;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

/// Longest PEM file read, in bytes: a chain or a CA bundle is well under a megabyte (the Mozilla
/// bundle is about 220 KiB); the cap keeps a wrong path (a log, a device) from being slurped.
pub const MAX_PEM_LEN: u64 = 16 << 20;

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    use std::io::Read as _;
    let err = |source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(err)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    if bytes.len() as u64 > MAX_PEM_LEN {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            reason: format!("longer than {MAX_PEM_LEN} bytes"),
        });
    }
    Ok(bytes)
}

/// The certificates of a PEM file, in order (leaf first for a chain). At least one.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            reason: format!("bad PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 RSA or SEC1 EC): the first key block.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Pem {
        path: path.to_path_buf(),
        reason: match e {
            rustls::pki_types::pem::Error::NoItemsFound => "no PRIVATE KEY block".into(),
            // The error text of a malformed section does not quote key bytes.
            other => format!("bad PEM: {other}"),
        },
    })
}
