//! Demo KYC applications: a queue a new officer can work at once, across jurisdictions and
//! scripts, with PEPs, a grey-listed nationality, near-matches of listed persons (when the
//! sanctions lists are loaded), one waiting for a second approval, one waiting for the user, one
//! approved and one past its SLA.

use chrono::{Duration, NaiveDate};
use diesel::prelude::*;

use crate::audit::Actor;
use crate::auth::Role;
use crate::db::schema::kyc_applications;
use crate::db::{write_transaction, Db};
use crate::error::AppError;
use crate::kyc::application::{IdentityDocument, MissingItem, PersonalData};
use crate::kyc::decision::Decision;
use crate::kyc::documents::{self, DocumentFile};
use crate::kyc::service::{Kyc, Submission};
use crate::kyc::{DocumentKind, Tier};
use crate::users::{store as users, NewUser};

const ID_CARD: &[u8] = include_bytes!("documents/identity-card.png");
const SELFIE: &[u8] = include_bytes!("documents/selfie.png");
const UTILITY_BILL: &[u8] = include_bytes!("documents/utility-bill.pdf");

struct Applicant {
    legal_name: &'static str,
    latin_name: Option<&'static str>,
    born: (i32, u32, u32),
    nationality: &'static str,
    residence: &'static str,
    language: &'static str,
    tier: u8,
    pep: bool,
    /// Where the demo leaves it.
    state: Left,
}

#[derive(Clone, Copy, PartialEq)]
enum Left {
    Queued,
    /// Submitted this many hours ago: past a 48-hour SLA.
    Overdue(i64),
    AwaitingSecondApproval,
    InformationRequested,
    Approved,
}

const APPLICANTS: [Applicant; 14] = [
    Applicant {
        legal_name: "张伟",
        latin_name: Some("Zhang Wei"),
        born: (1988, 4, 12),
        nationality: "CN",
        residence: "HK",
        language: "zh-Hant-HK",
        tier: 2,
        pep: false,
        state: Left::Queued,
    },
    Applicant {
        legal_name: "Lena Müller",
        latin_name: None,
        born: (1979, 9, 30),
        nationality: "CH",
        residence: "CH",
        language: "de-CH",
        tier: 3,
        pep: false,
        state: Left::Queued,
    },
    Applicant {
        legal_name: "Айгерим Бекова",
        latin_name: Some("Aigerim Bekova"),
        born: (1992, 1, 17),
        nationality: "KZ",
        residence: "KZ",
        language: "ru",
        tier: 1,
        pep: false,
        state: Left::Queued,
    },
    Applicant {
        legal_name: "Tan Wei Ming",
        latin_name: None,
        born: (1985, 6, 3),
        nationality: "SG",
        residence: "SG",
        language: "en-SG",
        tier: 2,
        pep: false,
        state: Left::Overdue(60),
    },
    Applicant {
        legal_name: "佐藤 浩",
        latin_name: Some("Hiroshi Sato"),
        born: (1990, 11, 8),
        nationality: "JP",
        residence: "JP",
        language: "ja",
        tier: 2,
        pep: false,
        state: Left::Queued,
    },
    Applicant {
        legal_name: "Seán O'Brien",
        latin_name: None,
        born: (1983, 3, 22),
        nationality: "IE",
        residence: "GB",
        language: "en-GB",
        tier: 2,
        pep: true,
        state: Left::AwaitingSecondApproval,
    },
    Applicant {
        legal_name: "Nguyễn Văn An",
        latin_name: Some("Nguyen Van An"),
        born: (1994, 7, 2),
        nationality: "VN",
        residence: "SG",
        language: "vi",
        tier: 2,
        pep: false,
        state: Left::Queued,
    },
    Applicant {
        legal_name: "Мария Иванова",
        latin_name: Some("Maria Ivanova"),
        born: (1987, 12, 5),
        nationality: "RU",
        residence: "DE",
        language: "de",
        tier: 1,
        pep: false,
        state: Left::InformationRequested,
    },
    Applicant {
        legal_name: "Victor Anatolyevich Bout",
        latin_name: None,
        born: (1967, 1, 13),
        nationality: "RU",
        residence: "KZ",
        language: "ru",
        tier: 2,
        pep: false,
        state: Left::Queued,
    },
    Applicant {
        legal_name: "Joaquín Guzmán Loera",
        latin_name: None,
        born: (1954, 12, 25),
        nationality: "MX",
        residence: "US",
        language: "es",
        tier: 2,
        pep: false,
        state: Left::Queued,
    },
    Applicant {
        legal_name: "Olivia Martin",
        latin_name: None,
        born: (1991, 2, 14),
        nationality: "CA",
        residence: "CA",
        language: "en-CA",
        tier: 2,
        pep: false,
        state: Left::Approved,
    },
    Applicant {
        legal_name: "Jack Thompson",
        latin_name: None,
        born: (1976, 8, 19),
        nationality: "AU",
        residence: "AU",
        language: "en-AU",
        tier: 3,
        pep: true,
        state: Left::Queued,
    },
    Applicant {
        legal_name: "Emily Carter",
        latin_name: None,
        born: (1998, 5, 27),
        nationality: "US",
        residence: "US",
        language: "en-US",
        tier: 1,
        pep: false,
        state: Left::Overdue(30),
    },
    Applicant {
        legal_name: "王芳",
        latin_name: Some("Wang Fang"),
        born: (1982, 10, 9),
        nationality: "CN",
        residence: "CN",
        language: "zh-CN",
        tier: 2,
        pep: false,
        state: Left::Queued,
    },
];

fn file(kind: DocumentKind, name: &str, bytes: &[u8]) -> Result<DocumentFile, AppError> {
    let content_type = documents::sniff(bytes).map_err(AppError::internal)?;
    Ok(DocumentFile {
        kind,
        file_name: name.to_string(),
        content_type,
        bytes: bytes.to_vec(),
    })
}

pub(crate) fn documents_for(tier: u8) -> Result<Vec<DocumentFile>, AppError> {
    let mut files = Vec::new();
    if tier >= 2 {
        files.push(file(
            DocumentKind::IdentityDocument,
            "passport.png",
            ID_CARD,
        )?);
        files.push(file(DocumentKind::Selfie, "selfie.png", SELFIE)?);
        files.push(file(
            DocumentKind::ProofOfAddress,
            "utility-bill.pdf",
            UTILITY_BILL,
        )?);
    }
    if tier >= 3 {
        files.push(file(
            DocumentKind::SourceOfFunds,
            "salary-statements.pdf",
            UTILITY_BILL,
        )?);
        files.push(file(
            DocumentKind::SourceOfWealth,
            "property-sale.pdf",
            UTILITY_BILL,
        )?);
    }
    Ok(files)
}

/// Submits the demo applications and moves some along; returns how many were submitted.
pub fn seed_applications(db: &Db, kyc: Kyc, officers: (&Actor, &Actor)) -> Result<usize, AppError> {
    let (officer, senior) = officers;
    let platform = Actor {
        id: "demo-platform".into(),
        name: "Demo platform backend".into(),
        role: "platform".into(),
    };
    let mut connection = db.connection()?;
    for (index, applicant) in APPLICANTS.iter().enumerate() {
        let (year, month, day) = applicant.born;
        let date_of_birth = NaiveDate::from_ymd_opt(year, month, day).unwrap_or_default();
        let personal_data = PersonalData {
            legal_name: applicant.legal_name.to_string(),
            latin_name: applicant.latin_name.map(str::to_string),
            date_of_birth,
            nationality: applicant.nationality.to_string(),
            residence: applicant.residence.to_string(),
            address: (applicant.tier >= 2).then(|| format!("{} Demo Street, {}", 10 + index, applicant.residence)),
            identity_document: (applicant.tier >= 2).then(|| IdentityDocument {
                document_type: "passport".into(),
                number: format!("P{:08}", 40_213_000 + index * 7919),
                issuing_country: applicant.nationality.to_string(),
                expires_on: NaiveDate::from_ymd_opt(2030 + (index % 5) as i32, 6, 30).unwrap_or_default(),
            }),
            pep_declared: applicant.pep,
            occupation: Some("Engineer".into()),
            source_of_funds: (applicant.tier >= 3).then(|| "Salary as a senior engineer and annual bonuses, paid into a Swiss bank account.".into()),
            source_of_wealth: (applicant.tier >= 3).then(|| "Sale of an inherited apartment in 2021 and long-term savings.".into()),
        };
        let submitted = write_transaction(&mut connection, |connection| {
            let user = users::insert(
                connection,
                kyc.cipher,
                &NewUser {
                    external_ref: format!("plat-kyc-{:04}", 2000 + index),
                    email: format!("applicant{index}@example.com"),
                    residence_jurisdiction: applicant.residence.to_string(),
                    preferred_language: applicant.language.to_string(),
                    date_of_birth: Some(date_of_birth),
                    address: None,
                },
            )?;
            kyc.submit(
                connection,
                &Submission {
                    user_id: user.id,
                    target_tier: Tier::new(applicant.tier).unwrap_or(Tier::BASIC),
                    personal_data,
                    documents: documents_for(applicant.tier)?,
                },
                &platform,
                None,
            )
        })?;
        let id = submitted.id;
        let decide = |connection: &mut crate::db::DbConnection,
                      actor: &Actor,
                      role: Role,
                      decision: Decision,
                      reason: &str| {
            kyc.claim(connection, &id, actor, role, None)?;
            kyc.decide(connection, &id, &decision, reason, actor, role, None)
        };
        match applicant.state {
            Left::Queued => {}
            Left::Overdue(hours) => {
                let submitted_at = crate::db::now() - Duration::hours(hours);
                let sla = kyc
                    .jurisdictions
                    .get(applicant.residence)
                    .map(|j| {
                        j.kyc
                            .tier(Tier::new(applicant.tier).unwrap_or(Tier::BASIC))
                            .review_sla_hours
                    })
                    .unwrap_or(24);
                // Backdated so the queue shows a breached SLA; only the demo does this.
                diesel::update(kyc_applications::table.find(&id))
                    .set((
                        kyc_applications::submitted_at.eq(submitted_at),
                        kyc_applications::due_at.eq(submitted_at + Duration::hours(i64::from(sla))),
                    ))
                    .execute(&mut **connection)?;
            }
            Left::AwaitingSecondApproval => {
                write_transaction(&mut connection, |c| {
                    decide(
                        c,
                        senior,
                        Role::SeniorOfficer,
                        Decision::Approve,
                        "Identity and PEP declaration verified; senior sign-off requested.",
                    )
                })?;
            }
            Left::InformationRequested => {
                let items = vec![MissingItem::new(
                    "address",
                    "Please add your residential address in Germany.",
                )];
                write_transaction(&mut connection, |c| {
                    decide(
                        c,
                        officer,
                        Role::Officer,
                        Decision::RequestInfo {
                            items: items.clone(),
                        },
                        "Address needed for the German residence check.",
                    )
                })?;
            }
            Left::Approved => {
                write_transaction(&mut connection, |c| {
                    decide(
                        c,
                        officer,
                        Role::Officer,
                        Decision::Approve,
                        "Passport, selfie and utility bill match.",
                    )
                })?;
            }
        }
    }
    Ok(APPLICANTS.len())
}
