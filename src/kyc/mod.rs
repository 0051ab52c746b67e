//! KYC: tiers, applications and their documents, risk rating, the officer review queue with
//! claims and four-eyes decisions, and periodic re-review. This module holds the domain types and
//! rules; `store` the queries, `routes` the HTTP handlers, `review` the daily re-review job.

pub mod application;
pub mod bench;
pub mod decision;
pub mod documents;
pub mod review;
pub mod risk;
pub mod routes;
pub mod rules;
pub mod service;
pub mod store;

use serde::{Deserialize, Serialize};

/// A KYC tier: 0 registered, 1 basic, 2 verified, 3 enhanced due diligence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Tier(u8);

impl Tier {
    pub const REGISTERED: Tier = Tier(0);
    pub const BASIC: Tier = Tier(1);
    pub const VERIFIED: Tier = Tier(2);
    pub const ENHANCED: Tier = Tier(3);

    pub fn new(number: u8) -> Option<Tier> {
        (number <= 3).then_some(Tier(number))
    }

    pub fn number(self) -> u8 {
        self.0
    }

    pub fn name(self) -> &'static str {
        ["registered", "basic", "verified", "enhanced"][usize::from(self.0)]
    }
}

/// The files an application can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// Passport, national identity card, driving licence or residence permit.
    IdentityDocument,
    /// A selfie or liveness capture, compared with the identity document's photo.
    Selfie,
    /// A utility bill, bank or tax statement under three months old.
    ProofOfAddress,
    SourceOfFunds,
    SourceOfWealth,
}

impl DocumentKind {
    pub const ALL: [DocumentKind; 5] = [
        DocumentKind::IdentityDocument,
        DocumentKind::Selfie,
        DocumentKind::ProofOfAddress,
        DocumentKind::SourceOfFunds,
        DocumentKind::SourceOfWealth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::IdentityDocument => "identity_document",
            DocumentKind::Selfie => "selfie",
            DocumentKind::ProofOfAddress => "proof_of_address",
            DocumentKind::SourceOfFunds => "source_of_funds",
            DocumentKind::SourceOfWealth => "source_of_wealth",
        }
    }

    pub fn parse(text: &str) -> Option<DocumentKind> {
        DocumentKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// How a user is told about it.
    pub fn description(self) -> &'static str {
        match self {
            DocumentKind::IdentityDocument => "a photo or scan of your identity document",
            DocumentKind::Selfie => "a selfie (liveness check)",
            DocumentKind::ProofOfAddress => "a proof of address under three months old",
            DocumentKind::SourceOfFunds => "evidence of the source of your funds",
            DocumentKind::SourceOfWealth => "evidence of the source of your wealth",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

impl RiskLevel {
    pub const ALL: [RiskLevel; 3] = [RiskLevel::Low, RiskLevel::Medium, RiskLevel::High];

    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        }
    }

    pub fn parse(text: &str) -> Option<RiskLevel> {
        RiskLevel::ALL
            .into_iter()
            .find(|level| level.as_str() == text)
    }

    /// Queue priority: 1 is worked first.
    pub fn priority(self) -> i32 {
        match self {
            RiskLevel::High => 1,
            RiskLevel::Medium => 2,
            RiskLevel::Low => 3,
        }
    }
}

/// Why an application was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationKind {
    /// The user asked for a tier.
    Onboarding,
    /// The periodic review of an approved user fell due.
    PeriodicReview,
    /// The identity document of an approved user expires soon.
    DocumentRenewal,
}

impl ApplicationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationKind::Onboarding => "onboarding",
            ApplicationKind::PeriodicReview => "periodic_review",
            ApplicationKind::DocumentRenewal => "document_renewal",
        }
    }

    pub fn parse(text: &str) -> Option<ApplicationKind> {
        [
            ApplicationKind::Onboarding,
            ApplicationKind::PeriodicReview,
            ApplicationKind::DocumentRenewal,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationStatus {
    /// In the queue, waiting for an officer.
    Submitted,
    /// The user was asked for more information and may resubmit.
    InfoRequested,
    /// Approved once; a second, different senior officer must confirm (four eyes).
    ApprovalPending,
    Approved,
    Rejected,
}

impl ApplicationStatus {
    pub const ALL: [ApplicationStatus; 5] = [
        ApplicationStatus::Submitted,
        ApplicationStatus::InfoRequested,
        ApplicationStatus::ApprovalPending,
        ApplicationStatus::Approved,
        ApplicationStatus::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationStatus::Submitted => "submitted",
            ApplicationStatus::InfoRequested => "info_requested",
            ApplicationStatus::ApprovalPending => "approval_pending",
            ApplicationStatus::Approved => "approved",
            ApplicationStatus::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<ApplicationStatus> {
        ApplicationStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    /// Waiting for an officer: counted against the SLA.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            ApplicationStatus::Submitted | ApplicationStatus::ApprovalPending
        )
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            ApplicationStatus::Approved | ApplicationStatus::Rejected
        )
    }
}

/// The tier a user may act on now: the approved one, lowered while a periodic review is lapsed.
pub fn effective_tier(approved: Tier, review_lapsed: bool, lapsed_tier: Tier) -> Tier {
    if review_lapsed {
        approved.min(lapsed_tier)
    } else {
        approved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lapsed_review_lowers_the_effective_tier_but_never_raises_it() {
        assert_eq!(
            effective_tier(Tier::ENHANCED, true, Tier::BASIC),
            Tier::BASIC
        );
        assert_eq!(
            effective_tier(Tier::ENHANCED, false, Tier::BASIC),
            Tier::ENHANCED
        );
        assert_eq!(
            effective_tier(Tier::REGISTERED, true, Tier::BASIC),
            Tier::REGISTERED
        );
    }

    #[test]
    fn names_round_trip() {
        for kind in DocumentKind::ALL {
            assert_eq!(DocumentKind::parse(kind.as_str()), Some(kind));
        }
        for status in ApplicationStatus::ALL {
            assert_eq!(ApplicationStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(Tier::new(4), None);
        assert_eq!(Tier::new(2).map(Tier::name), Some("verified"));
    }
}
