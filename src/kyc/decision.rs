//! The officer's side of an application: claims, and decisions under four eyes.
//!
//! An officer claims an application before working it; a claim lasts [`CLAIM_MINUTES`] and only
//! its holder may decide. Approvals to tier 3, of PEPs, of high-risk applicants or over an
//! unresolved screening hit take two officers: the first approval moves the application to
//! `approval_pending`, and a different senior officer confirms it.

use chrono::NaiveDateTime;
use serde::Serialize;
use utoipa::ToSchema;

use super::application::MissingItem;
use super::{ApplicationStatus, RiskLevel, Tier};
use crate::auth::Role;

/// How long a claim holds without activity.
pub const CLAIM_MINUTES: i64 = 30;

/// Stable rejection codes. Those touching screening or fraud are never named to the user
/// (tipping off).
pub const REJECTION_CODES: [&str; 9] = [
    "document_unreadable",
    "document_expired",
    "document_mismatch",
    "identity_not_verified",
    "underage",
    "unsupported_jurisdiction",
    "sanctions_match",
    "fraud_suspected",
    "other",
];

/// Codes whose reason the user is not told.
pub fn is_confidential(code: &str) -> bool {
    matches!(code, "sanctions_match" | "fraud_suspected")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject { code: String },
    RequestInfo { items: Vec<MissingItem> },
}

impl Decision {
    pub fn name(&self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject { .. } => "reject",
            Decision::RequestInfo { .. } => "request_info",
        }
    }
}

/// Why an approval needs a second officer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FourEyesReason {
    EnhancedTier,
    Pep,
    HighRisk,
    UnresolvedScreeningHit,
}

pub fn four_eyes_reasons(
    target: Tier,
    pep: bool,
    risk: RiskLevel,
    unresolved_hits: usize,
) -> Vec<FourEyesReason> {
    let mut reasons = Vec::new();
    if target == Tier::ENHANCED {
        reasons.push(FourEyesReason::EnhancedTier);
    }
    if pep {
        reasons.push(FourEyesReason::Pep);
    }
    if risk == RiskLevel::High {
        reasons.push(FourEyesReason::HighRisk);
    }
    if unresolved_hits > 0 {
        reasons.push(FourEyesReason::UnresolvedScreeningHit);
    }
    reasons
}

/// The application as the deciding officer finds it.
#[derive(Debug, Clone)]
pub struct UnderDecision<'a> {
    pub status: ApplicationStatus,
    pub assignee: Option<&'a str>,
    pub claim_expires_at: Option<NaiveDateTime>,
    pub first_approver: Option<&'a str>,
    pub four_eyes: &'a [FourEyesReason],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Recorded in the history and audit log (`kyc.approve`, `kyc.first_approval`, …).
    pub action: &'static str,
    pub status: ApplicationStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    #[error("the application is {0}; it cannot be decided now")]
    NotDecidable(&'static str),
    #[error("claim the application before deciding it")]
    NotClaimed,
    #[error("the application is claimed by {0}")]
    ClaimedByAnother(String),
    #[error("four eyes: you gave the first approval; a different senior officer must confirm it")]
    SameOfficer,
    #[error("four eyes: only a senior officer may confirm an approval")]
    NotSenior,
}

/// Whether `actor` holds a live claim on the application.
pub fn check_claim(
    application: &UnderDecision,
    actor_id: &str,
    now: NaiveDateTime,
) -> Result<(), DecisionError> {
    let live = application
        .claim_expires_at
        .is_some_and(|until| until > now);
    match application.assignee {
        Some(holder) if live && holder == actor_id => Ok(()),
        Some(holder) if live => Err(DecisionError::ClaimedByAnother(holder.to_string())),
        _ => Err(DecisionError::NotClaimed),
    }
}

/// Who may claim: officers claim applications in the queue, only senior officers other than the
/// first approver claim one waiting for its second approval.
pub fn check_may_claim(
    status: ApplicationStatus,
    first_approver: Option<&str>,
    actor_id: &str,
    role: Role,
) -> Result<(), DecisionError> {
    match status {
        ApplicationStatus::Submitted => Ok(()),
        ApplicationStatus::ApprovalPending if role != Role::SeniorOfficer => {
            Err(DecisionError::NotSenior)
        }
        ApplicationStatus::ApprovalPending if first_approver == Some(actor_id) => {
            Err(DecisionError::SameOfficer)
        }
        ApplicationStatus::ApprovalPending => Ok(()),
        other => Err(DecisionError::NotDecidable(other.as_str())),
    }
}

pub fn decide(
    application: &UnderDecision,
    decision: &Decision,
    actor_id: &str,
    role: Role,
    now: NaiveDateTime,
) -> Result<Outcome, DecisionError> {
    check_claim(application, actor_id, now)?;
    let first_of_two = match application.status {
        ApplicationStatus::Submitted => !application.four_eyes.is_empty(),
        ApplicationStatus::ApprovalPending => {
            check_may_claim(
                application.status,
                application.first_approver,
                actor_id,
                role,
            )?;
            false
        }
        other => return Err(DecisionError::NotDecidable(other.as_str())),
    };
    Ok(match decision {
        Decision::Approve if first_of_two => Outcome {
            action: "kyc.first_approval",
            status: ApplicationStatus::ApprovalPending,
        },
        Decision::Approve => Outcome {
            action: if application.status == ApplicationStatus::ApprovalPending {
                "kyc.second_approval"
            } else {
                "kyc.approve"
            },
            status: ApplicationStatus::Approved,
        },
        Decision::Reject { .. } => Outcome {
            action: "kyc.reject",
            status: ApplicationStatus::Rejected,
        },
        Decision::RequestInfo { .. } => Outcome {
            action: "kyc.request_info",
            status: ApplicationStatus::InfoRequested,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn now() -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_790_000_000, 0)
            .unwrap()
            .naive_utc()
    }

    fn claimed<'a>(
        status: ApplicationStatus,
        by: &'a str,
        first_approver: Option<&'a str>,
        four_eyes: &'a [FourEyesReason],
    ) -> UnderDecision<'a> {
        UnderDecision {
            status,
            assignee: Some(by),
            claim_expires_at: Some(now() + Duration::minutes(10)),
            first_approver,
            four_eyes,
        }
    }

    #[test]
    fn four_eyes_needs_a_second_different_senior_officer() {
        let reasons = [FourEyesReason::Pep];
        let first = decide(
            &claimed(ApplicationStatus::Submitted, "a", None, &reasons),
            &Decision::Approve,
            "a",
            Role::Officer,
            now(),
        )
        .unwrap();
        assert_eq!(first.status, ApplicationStatus::ApprovalPending);
        let own = claimed(ApplicationStatus::ApprovalPending, "a", Some("a"), &reasons);
        assert_eq!(
            decide(&own, &Decision::Approve, "a", Role::SeniorOfficer, now()),
            Err(DecisionError::SameOfficer)
        );
        let junior = claimed(ApplicationStatus::ApprovalPending, "b", Some("a"), &reasons);
        assert_eq!(
            decide(&junior, &Decision::Approve, "b", Role::Officer, now()),
            Err(DecisionError::NotSenior)
        );
        let second = decide(&junior, &Decision::Approve, "b", Role::SeniorOfficer, now());
        assert_eq!(second.unwrap().status, ApplicationStatus::Approved);
    }

    #[test]
    fn only_the_holder_of_a_live_claim_decides() {
        let mut application = claimed(ApplicationStatus::Submitted, "a", None, &[]);
        assert_eq!(
            decide(&application, &Decision::Approve, "b", Role::Officer, now()),
            Err(DecisionError::ClaimedByAnother("a".into()))
        );
        application.claim_expires_at = Some(now() - Duration::minutes(1));
        assert_eq!(
            decide(&application, &Decision::Approve, "a", Role::Officer, now()),
            Err(DecisionError::NotClaimed)
        );
        let plain = claimed(ApplicationStatus::Submitted, "a", None, &[]);
        let approved = decide(&plain, &Decision::Approve, "a", Role::Officer, now()).unwrap();
        assert_eq!(approved.status, ApplicationStatus::Approved);
        let done = claimed(ApplicationStatus::Approved, "a", None, &[]);
        assert_eq!(
            decide(&done, &Decision::Approve, "a", Role::Officer, now()),
            Err(DecisionError::NotDecidable("approved"))
        );
    }

    #[test]
    fn reasons_for_four_eyes() {
        assert!(four_eyes_reasons(Tier::VERIFIED, false, RiskLevel::Low, 0).is_empty());
        assert_eq!(
            four_eyes_reasons(Tier::ENHANCED, true, RiskLevel::High, 2),
            vec![
                FourEyesReason::EnhancedTier,
                FourEyesReason::Pep,
                FourEyesReason::HighRisk,
                FourEyesReason::UnresolvedScreeningHit
            ]
        );
    }
}
