//! `restic unlock`: removing the stale locks a killed restic left behind.

use crate::backend::restic::process::{Capture, Finished, args};
use crate::backend::restic::{Restic, Result};

impl Restic {
    /// `restic unlock`: removes stale locks (left by a killed restic), never live ones.
    pub async fn unlock(&self) -> Result<()> {
        let finished = self.run_unlock().await?;
        if finished.status.success() {
            Ok(())
        } else {
            Err(self.failed("unlock", &finished))
        }
    }

    /// Runs `restic unlock`; the caller reads the result.
    pub(super) async fn run_unlock(&self) -> Result<Finished> {
        let command = "unlock";
        self.preflight(command)?;
        self.run(command, &args(["unlock"]), Capture::Text, None)
            .await
    }
}
