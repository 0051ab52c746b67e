//! Reviewing a hit: confirm it, or dismiss it as a false positive. Dismissing a hit at or above
//! the jurisdiction's four-eyes score takes two officers: one proposes, a different senior
//! officer approves or rejects.

use crate::auth::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HitStatus {
    Open,
    Confirmed,
    DismissalPending,
    Dismissed,
}

impl HitStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HitStatus::Open => "open",
            HitStatus::Confirmed => "confirmed",
            HitStatus::DismissalPending => "dismissal_pending",
            HitStatus::Dismissed => "dismissed",
        }
    }

    pub fn parse(text: &str) -> Option<HitStatus> {
        [
            HitStatus::Open,
            HitStatus::Confirmed,
            HitStatus::DismissalPending,
            HitStatus::Dismissed,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// What an officer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewRequest {
    Confirm,
    Dismiss,
    /// The second officer's answer to a proposed dismissal.
    Approve,
    Reject,
}

/// The hit as the reviewer finds it.
pub struct HitUnderReview<'a> {
    pub status: HitStatus,
    pub score: f64,
    pub four_eyes_score: f64,
    /// Who proposed the pending dismissal, if one is pending.
    pub proposed_by: Option<&'a str>,
}

/// The recorded action and the hit's new status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub action: &'static str,
    pub status: HitStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    #[error("the hit is already {0}; a review is final")]
    AlreadyReviewed(&'static str),
    #[error("no dismissal of this hit is waiting for approval")]
    NothingToApprove,
    #[error("a dismissal of this hit is waiting for a senior officer's approval")]
    AwaitingApproval,
    #[error("four eyes: the dismissal was proposed by you; another senior officer must decide")]
    SameOfficer,
    #[error("only a senior officer may approve or reject a proposed dismissal")]
    NotSenior,
}

pub fn review(
    hit: &HitUnderReview,
    request: ReviewRequest,
    actor_id: &str,
    actor_role: Role,
) -> Result<Transition, ReviewError> {
    match (hit.status, request) {
        (HitStatus::Confirmed | HitStatus::Dismissed, _) => {
            Err(ReviewError::AlreadyReviewed(hit.status.as_str()))
        }
        (HitStatus::Open, ReviewRequest::Confirm) => Ok(Transition {
            action: "confirm",
            status: HitStatus::Confirmed,
        }),
        (HitStatus::Open, ReviewRequest::Dismiss) if hit.score >= hit.four_eyes_score => {
            Ok(Transition {
                action: "propose_dismissal",
                status: HitStatus::DismissalPending,
            })
        }
        (HitStatus::Open, ReviewRequest::Dismiss) => Ok(Transition {
            action: "dismiss",
            status: HitStatus::Dismissed,
        }),
        (HitStatus::Open, ReviewRequest::Approve | ReviewRequest::Reject) => {
            Err(ReviewError::NothingToApprove)
        }
        (HitStatus::DismissalPending, ReviewRequest::Confirm | ReviewRequest::Dismiss) => {
            Err(ReviewError::AwaitingApproval)
        }
        (HitStatus::DismissalPending, ReviewRequest::Approve | ReviewRequest::Reject) => {
            if actor_role != Role::SeniorOfficer {
                return Err(ReviewError::NotSenior);
            }
            if hit.proposed_by == Some(actor_id) {
                return Err(ReviewError::SameOfficer);
            }
            Ok(if request == ReviewRequest::Approve {
                Transition {
                    action: "approve_dismissal",
                    status: HitStatus::Dismissed,
                }
            } else {
                Transition {
                    action: "reject_dismissal",
                    status: HitStatus::Open,
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(status: HitStatus, score: f64, proposed_by: Option<&str>) -> HitUnderReview<'_> {
        HitUnderReview {
            status,
            score,
            four_eyes_score: 0.9,
            proposed_by,
        }
    }

    #[test]
    fn a_high_score_dismissal_needs_a_second_senior_officer() {
        let proposed = review(
            &hit(HitStatus::Open, 0.95, None),
            ReviewRequest::Dismiss,
            "a",
            Role::Officer,
        );
        assert_eq!(proposed.unwrap().status, HitStatus::DismissalPending);
        let pending = hit(HitStatus::DismissalPending, 0.95, Some("a"));
        assert_eq!(
            review(&pending, ReviewRequest::Approve, "a", Role::SeniorOfficer),
            Err(ReviewError::SameOfficer)
        );
        assert_eq!(
            review(&pending, ReviewRequest::Approve, "b", Role::Officer),
            Err(ReviewError::NotSenior)
        );
        let approved = review(&pending, ReviewRequest::Approve, "b", Role::SeniorOfficer);
        assert_eq!(approved.unwrap().status, HitStatus::Dismissed);
    }

    #[test]
    fn a_low_score_dismissal_is_final_at_once() {
        let dismissed = review(
            &hit(HitStatus::Open, 0.8, None),
            ReviewRequest::Dismiss,
            "a",
            Role::Officer,
        );
        assert_eq!(dismissed.unwrap().status, HitStatus::Dismissed);
        assert_eq!(
            review(
                &hit(HitStatus::Dismissed, 0.8, None),
                ReviewRequest::Confirm,
                "a",
                Role::Officer
            ),
            Err(ReviewError::AlreadyReviewed("dismissed"))
        );
    }
}
