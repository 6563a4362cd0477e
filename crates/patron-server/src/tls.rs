//! HTTPS material: a real certificate when given, else a self-signed one made on first run
//! and kept in the data directory so browsers can be told to trust it once.

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use std::path::{Path, PathBuf};

/// How the server does TLS.
#[derive(Debug, Clone)]
pub enum TlsSetting {
    /// A self-signed certificate under `DATA_DIR/tls/`, generated if missing.
    SelfSigned(PathBuf),
    /// PEM certificate chain and private key files.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// Plain HTTP (only with an explicit flag).
    Off,
}

/// Loads (or first creates) the TLS configuration; `None` for plain HTTP.
pub async fn tls_config(setting: &TlsSetting) -> anyhow::Result<Option<RustlsConfig>> {
    // Only the ring provider is compiled in; installing it explicitly keeps rustls from
    // guessing. A second call (tests start many servers) is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (cert, key) = match setting {
        TlsSetting::Off => return Ok(None),
        TlsSetting::Files { cert, key } => (cert.clone(), key.clone()),
        TlsSetting::SelfSigned(dir) => self_signed(dir)?,
    };
    let cfg = RustlsConfig::from_pem_file(&cert, &key)
        .await
        .with_context(|| {
            format!(
                "cannot load TLS certificate {} and key {}",
                cert.display(),
                key.display()
            )
        })?;
    Ok(Some(cfg))
}

/// Reloads the certificate and key from their files whenever the process gets SIGHUP, so a
/// renewed certificate is served without a restart; new connections get it, open ones keep
/// theirs. A file that does not load is logged and the current certificate kept.
pub fn reload_on_hangup(setting: &TlsSetting, cfg: RustlsConfig) -> anyhow::Result<()> {
    let (cert, key) = match setting {
        TlsSetting::Off => return Ok(()),
        TlsSetting::Files { cert, key } => (cert.clone(), key.clone()),
        TlsSetting::SelfSigned(dir) => (dir.join("cert.pem"), dir.join("key.pem")),
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match cfg.reload_from_pem_file(&cert, &key).await {
                    Ok(()) => {
                        tracing::info!(cert = %cert.display(), "reloaded the TLS certificate")
                    }
                    Err(e) => tracing::error!(
                        cert = %cert.display(),
                        "cannot reload the TLS certificate, keeping the current one: {e}"
                    ),
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (cert, key, cfg);
    Ok(())
}

fn self_signed(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let generated =
        rcgen::generate_simple_self_signed(names).context("cannot generate a certificate")?;
    std::fs::write(&cert, generated.cert.pem())?;
    write_private(&key, generated.key_pair.serialize_pem().as_bytes())?;
    tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate");
    Ok((cert, key))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(bytes)?;
    Ok(())
}
