//! `direct` in a chain: answers from the module's version-control repository
//! ([`gomodproxy_vcs::Direct`]), in the same bytes a proxy would send, so that the service
//! validates, verifies and stores them exactly like a proxy's.

use gomodproxy_storage::ArtifactKind;
use gomodproxy_vcs::{Direct, VcsError};

use super::{FetchError, Sink, Want};

/// Fetches `want` from version control into `sink`, at most `limit` bytes.
pub(super) async fn get(
    direct: &Direct,
    want: Want<'_>,
    limit: u64,
    sink: &mut Sink,
) -> Result<u64, FetchError> {
    let body: Vec<u8> = match want {
        Want::Artifact {
            module,
            version,
            kind: ArtifactKind::Info,
        } => direct
            .info(module, version.as_str())
            .await
            .map_err(vcs_error)?
            .to_info_json(),
        Want::Artifact {
            module,
            version,
            kind: ArtifactKind::Mod,
        } => direct
            .go_mod(module, version)
            .await
            .map_err(vcs_error)?
            .to_vec(),
        Want::Artifact {
            module,
            version,
            kind: ArtifactKind::Zip,
        } => return zip(direct, module, version, limit, sink).await,
        Want::List(module) => {
            let versions = direct.list(module).await.map_err(vcs_error)?;
            versions
                .iter()
                .map(|v| format!("{v}\n"))
                .collect::<String>()
                .into_bytes()
        }
        Want::Latest(module) => direct
            .latest(module)
            .await
            .map_err(vcs_error)?
            .to_info_json(),
        Want::Query { module, query } => direct
            .info(module, query)
            .await
            .map_err(vcs_error)?
            .to_info_json(),
        Want::Artifact {
            kind: ArtifactKind::ZipHash,
            ..
        }
        | Want::Path(_) => {
            return Err(FetchError::NotFound(format!(
                "direct: version control has no {}",
                want.rel()
            )));
        }
    };
    let len = body.len() as u64;
    if len > limit {
        return Err(FetchError::Bad(format!(
            "direct: {} is {len} bytes, over the {limit}-byte limit",
            want.rel()
        )));
    }
    sink.write(&body).await?;
    sink.finish().await?;
    Ok(len)
}

/// The module zip, built by the vcs crate straight into the spool file.
async fn zip(
    direct: &Direct,
    module: &gomod::ModulePath,
    version: &gomod::Version,
    limit: u64,
    sink: &mut Sink,
) -> Result<u64, FetchError> {
    let Sink::File { file, reservation } = sink else {
        return Err(FetchError::Local(
            "internal error: a zip is received into a spool file".to_string(),
        ));
    };
    let local = |e: std::io::Error| {
        FetchError::Local(format!(
            "cannot use the spool file ({})",
            crate::io_words(&e)
        ))
    };
    // A second handle on the same open file (one file offset): the vcs crate writes through it.
    let mut dest = file.try_clone().await.map_err(local)?.into_std().await;
    let len = direct
        .zip(module, version, &mut dest)
        .await
        .map_err(vcs_error)?;
    // The vcs crate bounds the zip itself (500 MiB); the budget is charged once it is written.
    reservation.grow(len)?;
    if len > limit {
        return Err(FetchError::Bad(format!(
            "direct: the zip of {module}@{version} is {len} bytes, over the {limit}-byte limit"
        )));
    }
    Ok(len)
}

/// A version-control failure as a fetch error: not found falls through `,` like a proxy's 404.
fn vcs_error(e: VcsError) -> FetchError {
    let message = format!("direct: {e}");
    match e {
        VcsError::NotFound { .. } | VcsError::Unsupported { .. } => FetchError::NotFound(message),
        VcsError::Timeout { .. } => FetchError::Timeout(message),
        VcsError::Busy { .. } => FetchError::Overloaded(message),
        VcsError::Io { .. } => FetchError::Local(message),
        _ => FetchError::Bad(message),
    }
}
