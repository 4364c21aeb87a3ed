//! `restic unlock`: removing the stale locks a killed restic left behind.

use crate::backend::restic::process::{Capture, args};
use crate::backend::restic::{Restic, Result};

impl Restic {
    /// `restic unlock`: removes stale locks (left by a killed restic), never live ones.
    pub async fn unlock(&self) -> Result<()> {
        let command = "unlock";
        self.preflight(command)?;
        let finished = self
            .run(command, &args(["unlock"]), Capture::Text, None)
            .await?;
        if finished.status.success() {
            Ok(())
        } else {
            Err(self.failed(command, &finished))
        }
    }
}
