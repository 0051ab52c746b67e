//! The steps of an application, each run inside the caller's transaction: submission with
//! screening and risk rating, claims, decisions with four eyes, resubmission, and the reviews the
//! daily job opens.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime};
use serde::Serialize;
use utoipa::ToSchema;

use super::application::{check_requirements, MissingItem, PersonalData};
use super::decision::{self, Decision, DecisionError, UnderDecision};
use super::documents::DocumentFile;
use super::risk::{self, RiskInputs, RiskRating};
use super::store::{self, Application, DocumentSummary, NewApplication, Profile};
use super::{ApplicationKind, ApplicationStatus, DocumentKind, Tier};
use crate::aml::matcher::SubjectQuery;
use crate::aml::names::SubjectKind;
use crate::aml::screener::{Screener, ScreeningRequest, Subject};
use crate::audit::{store as audit, Actor, NewAuditEntry};
use crate::auth::Role;
use crate::crypto::FieldCipher;
use crate::db::DbConnection;
use crate::error::{AppError, FieldError};
use crate::jurisdiction::{Jurisdiction, Jurisdictions};
use crate::notify::outbox::{self, Related};

/// What the steps need beyond the connection.
#[derive(Clone, Copy)]
pub struct Kyc<'a> {
    pub cipher: &'a FieldCipher,
    pub screener: &'a Screener,
    pub jurisdictions: &'a Jurisdictions,
}

pub const SUBJECT_TYPE: &str = "kyc_application";

/// Activity counts over this window.
const ACTIVITY_DAYS: i64 = 90;

pub struct Submission {
    pub user_id: String,
    pub target_tier: Tier,
    pub personal_data: PersonalData,
    pub documents: Vec<DocumentFile>,
}

/// What the applicant (or the platform) sees after submitting: never the screening or the risk.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubmittedApplication {
    pub id: String,
    pub user_id: String,
    #[schema(value_type = String)]
    pub status: ApplicationStatus,
    #[schema(value_type = u8)]
    pub target_tier: Tier,
    pub jurisdiction: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub submitted_at: NaiveDateTime,
    pub documents: Vec<DocumentSummary>,
}

impl<'a> Kyc<'a> {
    fn rules_for(&self, residence: &str) -> Result<&'a Jurisdiction, AppError> {
        self.jurisdictions.get(residence).ok_or_else(|| {
            AppError::invalid_field(
                "personal_data.residence",
                "unsupported_jurisdiction",
                format!("hashgate has no rules for residents of {residence}"),
            )
        })
    }

    /// Screens the applicant's names (the legal name, and the Latin one when it differs).
    fn screen(
        &self,
        connection: &mut DbConnection,
        user_id: &str,
        jurisdiction: &Jurisdiction,
        data: &PersonalData,
        actor: &Actor,
    ) -> Result<Vec<String>, AppError> {
        let mut names = vec![data.legal_name.clone()];
        if let Some(latin) = &data.latin_name {
            if latin != &data.legal_name {
                names.push(latin.clone());
            }
        }
        let mut ids = Vec::new();
        for name in names {
            let request = ScreeningRequest {
                subject: Subject::Named {
                    kind: SubjectKind::Person,
                    query: SubjectQuery {
                        name,
                        date_of_birth: Some(data.date_of_birth),
                        country: Some(data.nationality.clone()),
                        document_number: data
                            .identity_document
                            .as_ref()
                            .map(|document| document.number.clone()),
                    },
                },
                subject_ref: Some(user_id.to_string()),
                jurisdiction: Some(jurisdiction.code.clone()),
                rules: jurisdiction.screening,
            };
            ids.push(
                self.screener
                    .screen(connection, self.cipher, &request, actor)?
                    .id,
            );
        }
        Ok(ids)
    }

    fn rate(
        &self,
        connection: &mut DbConnection,
        user_id: &str,
        jurisdiction: &Jurisdiction,
        data: &PersonalData,
        screening_ids: &[String],
        now: NaiveDateTime,
    ) -> Result<RiskRating, AppError> {
        let (sanctions_hits, pep_hits, _) = store::hit_counts(connection, screening_ids)?;
        let recent_payouts_usd =
            store::payouts_usd_since(connection, user_id, now - Duration::days(ACTIVITY_DAYS))?;
        Ok(risk::rate(
            &RiskInputs {
                nationality: &data.nationality,
                residence: &data.residence,
                pep_declared: data.pep_declared,
                pep_hits,
                sanctions_hits,
                recent_payouts_usd,
                high_activity_usd: jurisdiction.kyc.high_activity_usd,
            },
            &self.jurisdictions.country_risk,
        ))
    }

    pub fn submit(
        &self,
        connection: &mut DbConnection,
        submission: &Submission,
        actor: &Actor,
        request_id: Option<String>,
    ) -> Result<SubmittedApplication, AppError> {
        let user_id = &submission.user_id;
        crate::users::store::require_exists(connection, user_id)?;
        let data = &submission.personal_data;
        let jurisdiction = self.rules_for(&data.residence)?;
        if let Some(open) = store::open_application_of(connection, user_id)? {
            return Err(AppError::Conflict(format!(
                "the user already has application {open} in progress; answer or wait for it"
            )));
        }
        let current = store::profile(connection, user_id)?
            .map(|profile| profile.approved_tier())
            .unwrap_or(Tier::REGISTERED);
        if submission.target_tier <= current {
            return Err(AppError::Conflict(format!(
                "the user is already approved for tier {}; apply for a higher tier",
                current.number()
            )));
        }
        let now = crate::db::now();
        let kinds: Vec<DocumentKind> = submission.documents.iter().map(|file| file.kind).collect();
        require_complete(data, &kinds, submission.target_tier, jurisdiction, now)?;
        let screening_ids = self.screen(connection, user_id, jurisdiction, data, actor)?;
        let rating = self.rate(connection, user_id, jurisdiction, data, &screening_ids, now)?;
        let id = uuid::Uuid::new_v4().to_string();
        let sla = jurisdiction
            .kyc
            .tier(submission.target_tier)
            .review_sla_hours;
        store::insert_application(
            connection,
            self.cipher,
            &NewApplication {
                id: &id,
                user_id,
                jurisdiction: &jurisdiction.code,
                kind: ApplicationKind::Onboarding,
                target_tier: submission.target_tier,
                personal_data: data,
                screening_ids: &screening_ids,
                risk: &rating,
                submitted_at: now,
                due_at: now + Duration::hours(i64::from(sla)),
                submitted_by: actor,
                based_on: None,
            },
        )?;
        let documents = submission
            .documents
            .iter()
            .map(|file| store::insert_document(connection, self.cipher, &id, file))
            .collect::<Result<Vec<_>, _>>()?;
        audit::append(
            connection,
            NewAuditEntry::new(actor.clone(), "kyc.submit", SUBJECT_TYPE, &id, request_id).details(
                serde_json::json!({
                    "user_id": user_id,
                    "target_tier": submission.target_tier.number(),
                    "jurisdiction": jurisdiction.code,
                    "documents": documents.iter().map(|d| serde_json::json!({"kind": d.kind, "sha256": d.sha256})).collect::<Vec<_>>(),
                    "screenings": screening_ids,
                    "risk": rating.level,
                }),
            ),
        )?;
        Ok(SubmittedApplication {
            id,
            user_id: user_id.clone(),
            status: ApplicationStatus::Submitted,
            target_tier: submission.target_tier,
            jurisdiction: jurisdiction.code.clone(),
            submitted_at: now,
            documents,
        })
    }

    /// The applicant answers a request for information: replaced personal data (optional) and
    /// more documents; the application is screened and rated again and goes back to the queue.
    pub fn resubmit(
        &self,
        connection: &mut DbConnection,
        application: &Application,
        personal_data: Option<PersonalData>,
        documents: &[DocumentFile],
        actor: &Actor,
        request_id: Option<String>,
    ) -> Result<SubmittedApplication, AppError> {
        if application.status != ApplicationStatus::InfoRequested {
            return Err(AppError::Conflict(format!(
                "the application is {}; only an application waiting for information takes a resubmission",
                application.status.as_str()
            )));
        }
        let data = personal_data.unwrap_or_else(|| application.personal_data.clone());
        let jurisdiction = self.rules_for(&data.residence)?;
        let now = crate::db::now();
        if !store::take_for_step(connection, &application.id, application.status, None, now)? {
            return Err(AppError::Conflict(
                "the application changed meanwhile; read its status again".into(),
            ));
        }
        // A review keeps the documents of the approved applications it follows.
        let lineage = store::lineage(connection, &application.id)?;
        let sources: Vec<&str> = lineage.iter().map(String::as_str).collect();
        let mut kinds = store::document_kinds(connection, &sources)?;
        kinds.extend(documents.iter().map(|file| file.kind));
        require_complete(&data, &kinds, application.target_tier, jurisdiction, now)?;
        let screening_ids = if data == application.personal_data {
            application.screening_ids.clone()
        } else {
            self.screen(connection, &application.user_id, jurisdiction, &data, actor)?
        };
        let rating = self.rate(
            connection,
            &application.user_id,
            jurisdiction,
            &data,
            &screening_ids,
            now,
        )?;
        let sla = jurisdiction
            .kyc
            .tier(application.target_tier)
            .review_sla_hours;
        store::record_resubmission(
            connection,
            self.cipher,
            &application.id,
            &store::Resubmission {
                personal_data: &data,
                screening_ids: &screening_ids,
                risk: &rating,
                due_at: now + Duration::hours(i64::from(sla)),
            },
            now,
        )?;
        let added = documents
            .iter()
            .map(|file| store::insert_document(connection, self.cipher, &application.id, file))
            .collect::<Result<Vec<_>, _>>()?;
        audit::append(
            connection,
            NewAuditEntry::new(actor.clone(), "kyc.resubmit", SUBJECT_TYPE, &application.id, request_id)
                .details(serde_json::json!({
                    "personal_data_changed": data != application.personal_data,
                    "documents": added.iter().map(|d| serde_json::json!({"kind": d.kind, "sha256": d.sha256})).collect::<Vec<_>>(),
                    "risk": rating.level,
                })),
        )?;
        Ok(SubmittedApplication {
            id: application.id.clone(),
            user_id: application.user_id.clone(),
            status: ApplicationStatus::Submitted,
            target_tier: application.target_tier,
            jurisdiction: jurisdiction.code.clone(),
            submitted_at: application.submitted_at,
            documents: store::documents(connection, &[&application.id])?,
        })
    }

    /// Why an approval of this application now needs four eyes.
    pub fn four_eyes_reasons(
        &self,
        connection: &mut DbConnection,
        application: &Application,
    ) -> Result<Vec<decision::FourEyesReason>, AppError> {
        let (_, pep_hits, unresolved) = store::hit_counts(connection, &application.screening_ids)?;
        let pep = application.personal_data.pep_declared || pep_hits > 0;
        Ok(decision::four_eyes_reasons(
            application.target_tier,
            pep,
            application.risk.level,
            unresolved,
        ))
    }

    pub fn claim(
        &self,
        connection: &mut DbConnection,
        id: &str,
        actor: &Actor,
        role: Role,
        request_id: Option<String>,
    ) -> Result<NaiveDateTime, AppError> {
        let application = store::require(connection, self.cipher, id)?;
        decision::check_may_claim(
            application.status,
            application.first_approver_id.as_deref(),
            &actor.id,
            role,
        )
        .map_err(decision_error)?;
        let now = crate::db::now();
        let until = store::claim(connection, id, actor, now)?.ok_or_else(|| {
            AppError::Conflict(format!(
                "the application is claimed by {} until {}",
                application
                    .assignee_name
                    .as_deref()
                    .unwrap_or("another officer"),
                application
                    .claim_expires_at
                    .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default()
            ))
        })?;
        audit::append(
            connection,
            NewAuditEntry::new(actor.clone(), "kyc.claim", SUBJECT_TYPE, id, request_id)
                .details(serde_json::json!({ "until": until })),
        )?;
        Ok(until)
    }

    pub fn release(
        &self,
        connection: &mut DbConnection,
        id: &str,
        actor: &Actor,
        request_id: Option<String>,
    ) -> Result<(), AppError> {
        let application = store::require(connection, self.cipher, id)?;
        let now = crate::db::now();
        decision::check_claim(&under_decision(&application, &[]), &actor.id, now)
            .map_err(decision_error)?;
        store::release(connection, id, now)?;
        audit::append(
            connection,
            NewAuditEntry::new(actor.clone(), "kyc.release", SUBJECT_TYPE, id, request_id),
        )?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn decide(
        &self,
        connection: &mut DbConnection,
        id: &str,
        decision: &Decision,
        reason: &str,
        actor: &Actor,
        role: Role,
        request_id: Option<String>,
    ) -> Result<ApplicationStatus, AppError> {
        let application = store::require(connection, self.cipher, id)?;
        let reasons = self.four_eyes_reasons(connection, &application)?;
        let now = crate::db::now();
        let outcome = decision::decide(
            &under_decision(&application, &reasons),
            decision,
            &actor.id,
            role,
            now,
        )
        .map_err(decision_error)?;
        if !store::take_for_step(connection, id, application.status, Some(&actor.id), now)? {
            return Err(AppError::Conflict(
                "the application changed while you were deciding; reload it".into(),
            ));
        }
        let mut details = serde_json::json!({
            "decision": decision.name(),
            "status": outcome.status.as_str(),
            "four_eyes": reasons,
        });
        match (outcome.status, decision) {
            (ApplicationStatus::ApprovalPending, _) => {
                store::record_first_approval(connection, id, actor, now)?;
            }
            (ApplicationStatus::Approved, _) => {
                let second =
                    (application.status == ApplicationStatus::ApprovalPending).then_some(actor);
                store::record_final_decision(
                    connection,
                    id,
                    outcome.status,
                    None,
                    reason,
                    second,
                    now,
                )?;
                self.save_approval(connection, &application, now)?;
                self.notify(connection, &application, "kyc_approved", &[], now)?;
            }
            (ApplicationStatus::Rejected, Decision::Reject { code }) => {
                store::record_final_decision(
                    connection,
                    id,
                    outcome.status,
                    Some(code),
                    reason,
                    None,
                    now,
                )?;
                details["code"] = serde_json::json!(code);
                let told = if decision::is_confidential(code) {
                    String::new()
                } else {
                    reason.to_string()
                };
                self.notify(
                    connection,
                    &application,
                    "kyc_rejected",
                    &[("reason", told)],
                    now,
                )?;
            }
            (ApplicationStatus::InfoRequested, Decision::RequestInfo { items }) => {
                store::record_info_request(connection, id, items, now)?;
                details["items"] = serde_json::json!(items);
                let list = items
                    .iter()
                    .map(|item| format!("- {}", item.message))
                    .collect::<Vec<_>>()
                    .join("\n");
                self.notify(
                    connection,
                    &application,
                    "kyc_info_requested",
                    &[("items", list)],
                    now,
                )?;
            }
            _ => {
                return Err(AppError::internal(anyhow::anyhow!(
                    "unexpected decision outcome"
                )))
            }
        }
        audit::append(
            connection,
            NewAuditEntry::new(actor.clone(), outcome.action, SUBJECT_TYPE, id, request_id)
                .reason(Some(reason.to_string()))
                .details(details),
        )?;
        Ok(outcome.status)
    }

    /// The user's standing after an approval: the tier (kept by a periodic review), the risk,
    /// and when the next review falls due.
    fn save_approval(
        &self,
        connection: &mut DbConnection,
        application: &Application,
        now: NaiveDateTime,
    ) -> Result<(), AppError> {
        let jurisdiction = self.rules_for(&application.jurisdiction)?;
        let previous = store::profile(connection, &application.user_id)?;
        let tier = previous
            .as_ref()
            .map(|profile| profile.approved_tier())
            .unwrap_or(Tier::REGISTERED)
            .max(application.target_tier);
        let (_, pep_hits, _) = store::hit_counts(connection, &application.screening_ids)?;
        let months = jurisdiction
            .kyc
            .review_interval_months(application.risk.level);
        let next_review_at = now
            .checked_add_months(chrono::Months::new(months))
            .unwrap_or(now);
        let document_expires_on = application
            .personal_data
            .identity_document
            .as_ref()
            .map(|document| document.expires_on)
            .or(previous
                .as_ref()
                .and_then(|profile| profile.document_expires_on));
        store::save_profile(
            connection,
            &Profile {
                user_id: application.user_id.clone(),
                jurisdiction: application.jurisdiction.clone(),
                approved_tier: i32::from(tier.number()),
                approved_application_id: application.id.clone(),
                risk_level: application.risk.level.as_str().to_string(),
                pep: application.personal_data.pep_declared || pep_hits > 0,
                approved_at: now,
                next_review_at,
                review_lapsed_at: None,
                document_expires_on,
                updated_at: now,
            },
        )?;
        Ok(())
    }

    /// Queues the e-mail to the applicant in this transaction.
    pub fn notify(
        &self,
        connection: &mut DbConnection,
        application: &Application,
        template: &str,
        extra: &[(&'static str, String)],
        now: NaiveDateTime,
    ) -> Result<(), AppError> {
        let user = crate::users::store::find(connection, self.cipher, &application.user_id)?;
        let zone = self
            .jurisdictions
            .get(&application.jurisdiction)
            .map(|jurisdiction| jurisdiction.time_zone)
            .unwrap_or(chrono_tz::UTC);
        let mut values: BTreeMap<&str, String> = BTreeMap::from([
            ("name", application.personal_data.legal_name.clone()),
            ("tier", application.target_tier.number().to_string()),
            ("tier_name", application.target_tier.name().to_string()),
            ("application_id", application.id.clone()),
            (
                "date",
                now.and_utc().with_timezone(&zone).date_naive().to_string(),
            ),
        ]);
        values.extend(extra.iter().cloned());
        outbox::enqueue(
            connection,
            self.cipher,
            template,
            (&user.email, &user.preferred_language),
            &values,
            Related {
                kind: SUBJECT_TYPE,
                id: &application.id,
            },
        )?;
        Ok(())
    }

    /// A document of the application (or of the approved applications a review follows) for
    /// an officer; every read is audited.
    pub fn document_for_officer(
        &self,
        connection: &mut DbConnection,
        application_id: &str,
        document_id: &str,
        actor: &Actor,
        request_id: Option<String>,
    ) -> Result<(DocumentSummary, Vec<u8>), AppError> {
        store::require(connection, self.cipher, application_id)?;
        let lineage = store::lineage(connection, application_id)?;
        let (summary, content) = store::document_content(connection, self.cipher, document_id)?
            .filter(|(summary, _)| lineage.contains(&summary.application_id))
            .ok_or_else(|| {
                AppError::NotFound(format!(
                    "no document {document_id} in application {application_id}"
                ))
            })?;
        audit::append(
            connection,
            NewAuditEntry::new(actor.clone(), "kyc.view_document", SUBJECT_TYPE, application_id, request_id)
                .details(serde_json::json!({ "document_id": document_id, "kind": summary.kind, "sha256": summary.sha256 })),
        )?;
        Ok((summary, content))
    }

    /// Opens a review of an approved user (periodic, or for an expiring document), screened and
    /// rated again from their last approved data. Returns the new application's id.
    pub fn open_review(
        &self,
        connection: &mut DbConnection,
        profile: &Profile,
        kind: ApplicationKind,
        actor: &Actor,
    ) -> Result<String, AppError> {
        let approved = store::require(connection, self.cipher, &profile.approved_application_id)?;
        let jurisdiction = self.rules_for(&approved.jurisdiction)?;
        let now = crate::db::now();
        let data = &approved.personal_data;
        let screening_ids = self.screen(connection, &profile.user_id, jurisdiction, data, actor)?;
        let rating = self.rate(
            connection,
            &profile.user_id,
            jurisdiction,
            data,
            &screening_ids,
            now,
        )?;
        let id = uuid::Uuid::new_v4().to_string();
        let tier = profile.approved_tier();
        let sla = jurisdiction
            .kyc
            .tier(tier.max(Tier::BASIC))
            .review_sla_hours;
        store::insert_application(
            connection,
            self.cipher,
            &NewApplication {
                id: &id,
                user_id: &profile.user_id,
                jurisdiction: &jurisdiction.code,
                kind,
                target_tier: tier.max(Tier::BASIC),
                personal_data: data,
                screening_ids: &screening_ids,
                risk: &rating,
                submitted_at: now,
                due_at: now + Duration::hours(i64::from(sla)),
                submitted_by: actor,
                based_on: Some(&approved.id),
            },
        )?;
        audit::append(
            connection,
            NewAuditEntry::new(
                actor.clone(),
                &format!("kyc.open_{}", kind.as_str()),
                SUBJECT_TYPE,
                &id,
                None,
            )
            .details(serde_json::json!({
                "user_id": profile.user_id,
                "based_on": approved.id,
                "next_review_at": profile.next_review_at,
                "document_expires_on": profile.document_expires_on,
                "risk": rating.level,
            })),
        )?;
        if kind == ApplicationKind::DocumentRenewal {
            // The user has something to do at once: the renewal waits for their new document.
            let items = [MissingItem::new(
                DocumentKind::IdentityDocument.as_str(),
                "Please upload your new identity document and update its number and expiry date.",
            )];
            store::record_info_request(connection, &id, &items, now)?;
        }
        Ok(id)
    }
}

fn under_decision<'a>(
    application: &'a Application,
    reasons: &'a [decision::FourEyesReason],
) -> UnderDecision<'a> {
    UnderDecision {
        status: application.status,
        assignee: application.assignee_id.as_deref(),
        claim_expires_at: application.claim_expires_at,
        first_approver: application.first_approver_id.as_deref(),
        four_eyes: reasons,
    }
}

fn decision_error(error: DecisionError) -> AppError {
    match error {
        DecisionError::SameOfficer | DecisionError::NotSenior => {
            AppError::Forbidden(error.to_string())
        }
        _ => AppError::Conflict(error.to_string()),
    }
}

/// 422 naming every field and document the tier still needs.
fn require_complete(
    data: &PersonalData,
    documents: &[DocumentKind],
    tier: Tier,
    jurisdiction: &Jurisdiction,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let missing = check_requirements(data, documents, tier, &jurisdiction.kyc, now.date());
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing_problem(&missing))
    }
}

/// The missing items as a 422 naming each field.
fn missing_problem(missing: &[MissingItem]) -> AppError {
    AppError::Validation(
        missing
            .iter()
            .map(|item| {
                let field = if DocumentKind::parse(&item.item).is_some() {
                    format!("documents.{}", item.item)
                } else {
                    format!("personal_data.{}", item.item)
                };
                FieldError::new(field, "required_for_tier", item.message.clone())
            })
            .collect(),
    )
}
