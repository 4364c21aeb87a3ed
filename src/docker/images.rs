//! Images for Marina's own containers: present already, or pulled as the [`PullPolicy`] says.

use std::pin::pin;

use bollard::Docker;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;
use tracing::{info, warn};

use super::client::is_not_found;
use super::error::{Result, RuntimeError};

/// When to pull an image before running a container from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull every time (a moving tag gets its update); when the pull fails but the image is
    /// present, warn and use the local image (SPEC §4.2).
    Always,
    /// Pull only when the image is not present.
    #[default]
    IfMissing,
    /// Never pull; a missing image is an error.
    Never,
}

/// Makes sure `image` is present, pulling it as `policy` says.
pub(super) async fn ensure_image(docker: &Docker, image: &str, policy: PullPolicy) -> Result<()> {
    let present = || async { image_present(docker, image).await };
    match policy {
        PullPolicy::Never => {
            if present().await? {
                Ok(())
            } else {
                Err(RuntimeError::ImageMissing {
                    image: image.to_owned(),
                    reason: "pulling is disabled".to_owned(),
                })
            }
        }
        PullPolicy::IfMissing if present().await? => Ok(()),
        PullPolicy::IfMissing | PullPolicy::Always => match pull(docker, image).await {
            Ok(()) => Ok(()),
            Err(reason) if present().await? => {
                warn!(image = %image, error = %reason,
                    "Cannot pull the image; using the local copy.");
                Ok(())
            }
            Err(reason) => Err(RuntimeError::ImageMissing {
                image: image.to_owned(),
                reason,
            }),
        },
    }
}

async fn image_present(docker: &Docker, image: &str) -> Result<bool> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(source) => Err(RuntimeError::InspectImage {
            image: image.to_owned(),
            source,
        }),
    }
}

/// Whether `image` names an ENTRYPOINT of its own.
pub(super) async fn image_has_entrypoint(docker: &Docker, image: &str) -> Result<bool> {
    let inspected =
        docker
            .inspect_image(image)
            .await
            .map_err(|source| RuntimeError::InspectImage {
                image: image.to_owned(),
                source,
            })?;
    Ok(inspected
        .config
        .and_then(|c| c.entrypoint)
        .is_some_and(|e| e.iter().any(|part| !part.is_empty())))
}

/// Pulls `image`; the error is the engine's message.
async fn pull(docker: &Docker, image: &str) -> Result<(), String> {
    let (from_image, tag) = pull_reference(image);
    let mut options = CreateImageOptionsBuilder::new().from_image(from_image);
    if let Some(tag) = tag {
        options = options.tag(tag);
    }
    info!(image = %image, "Pulling an image.");
    let mut progress = pin!(docker.create_image(Some(options.build()), None, None));
    while let Some(step) = progress.next().await {
        step.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `fromImage` and `tag` for a pull. Without a tag the engine would pull *every* tag of the
/// repository, so a bare name gets `latest`, as `docker pull` does.
fn pull_reference(image: &str) -> (&str, Option<&str>) {
    let last_segment = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last_segment.contains(':') {
        (image, None)
    } else {
        (image, Some("latest"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pull_always_names_a_tag_or_digest() {
        assert_eq!(pull_reference("alpine"), ("alpine", Some("latest")));
        assert_eq!(pull_reference("alpine:3.20"), ("alpine:3.20", None));
        assert_eq!(
            pull_reference("registry:5000/team/app"),
            ("registry:5000/team/app", Some("latest"))
        );
        assert_eq!(
            pull_reference("registry:5000/team/app:1"),
            ("registry:5000/team/app:1", None)
        );
        assert_eq!(pull_reference("app@sha256:abcd"), ("app@sha256:abcd", None));
    }
}
