//! Status conditions, in the manner of Kubernetes object status: each says whether something
//! holds, with a machine-readable reason and a sentence for people.

use serde::Serialize;

/// What a condition is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ConditionType {
    /// Everything needed to back it up is there (volume exists, container runs, …).
    Ready,
    /// A next run is known.
    Scheduled,
    /// The latest backup succeeded.
    LastBackupSucceeded,
}

/// Whether a condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ConditionStatus {
    /// It holds.
    True,
    /// It does not hold; the reason says why.
    False,
    /// Not known yet.
    Unknown,
}

/// One condition of an instance or target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    /// What the condition is about.
    #[serde(rename = "type")]
    pub kind: ConditionType,
    /// Whether it holds.
    pub status: ConditionStatus,
    /// A `CamelCase` word for programs and alerts, e.g. `ContainerNotFound`.
    pub reason: &'static str,
    /// A sentence for people.
    pub message: String,
}

impl Condition {
    /// A condition that holds.
    #[must_use]
    pub fn holds(kind: ConditionType, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: ConditionStatus::True,
            reason,
            message: message.into(),
        }
    }

    /// A condition that does not hold.
    #[must_use]
    pub fn fails(kind: ConditionType, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: ConditionStatus::False,
            reason,
            message: message.into(),
        }
    }

    /// A condition not known yet.
    #[must_use]
    pub fn unknown(kind: ConditionType, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: ConditionStatus::Unknown,
            reason,
            message: message.into(),
        }
    }

    /// Whether it holds.
    #[must_use]
    pub fn is_true(&self) -> bool {
        self.status == ConditionStatus::True
    }
}
