//! Demo withdrawals: the demo's ledger users are verified (tier 2) through the KYC service, get
//! an address book and today's payout, and then withdraw through the real gate — approved ones,
//! structuring held in Hong Kong, an address outside the book held in Switzerland and refused in
//! Singapore, a new address still cooling off in the UK — so the console opens on alerts, held
//! withdrawals and a case. Run before the sanctions lists load: nobody here should be a hit.

use chrono::{Duration, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};

use super::kyc::documents_for;
use crate::aml::monitoring::cases;
use crate::audit::Actor;
use crate::auth::Role;
use crate::db::{write_transaction, write_transaction_planned, DbConnection, Plans};
use crate::error::AppError;
use crate::kyc::application::{IdentityDocument, PersonalData};
use crate::kyc::decision::Decision;
use crate::kyc::service::{Kyc, Submission};
use crate::kyc::Tier;
use crate::ledger::payouts::{validate_batch, PayoutInput};
use crate::ledger::store as ledger;
use crate::withdrawals::addresses::{AddressBook, NewAddress};
use crate::withdrawals::gate::Decision as GateDecision;
use crate::withdrawals::service::{Gate, Request};
use crate::AppState;

/// Valid mainnet addresses on no list (BIP and well-known examples).
const BTC_BOOKED: [&str; 4] = [
    "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
    "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
    "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
];
const TRON_BOOKED: &str = "TBHTJqAy4DhHhmT3dNceJYNRz4SdLofLre";
const TRON_UNLISTED: &str = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t";

/// The demo ledger users' names as their KYC applications give them.
const NAMES: [(&str, &str); 6] = [
    ("Ka Yan Leung", "HK"),
    ("Lena Brunner", "CH"),
    ("Aigerim Nurlanovna", "KZ"),
    ("Tan Wei Ming", "SG"),
    ("Hiroshi Sato", "JP"),
    ("Sean O'Brien", "IE"),
];

#[derive(Debug, Default)]
pub struct DemoWithdrawals {
    pub withdrawals: usize,
    pub held: usize,
    pub alerts: usize,
    pub cases: usize,
}

/// Who acts in the demo: the platform asks, officers review.
pub struct Actors<'a> {
    pub platform: &'a Actor,
    pub officer: &'a Actor,
    pub senior: &'a Actor,
}

pub fn seed(
    state: &AppState,
    users: &[(String, String)],
    actors: &Actors,
) -> Result<DemoWithdrawals, AppError> {
    let mut connection = state.db.connection()?;
    let mut summary = DemoWithdrawals::default();
    let gate = Gate {
        cipher: &state.cipher,
        screener: &state.screener,
        jurisdictions: &state.jurisdictions,
        price_staleness: state.price_staleness,
    };
    let book = AddressBook {
        cipher: &state.cipher,
        jurisdictions: &state.jurisdictions,
    };
    for (index, (external_ref, user_id)) in users.iter().enumerate().take(NAMES.len()) {
        verify(&mut connection, state, user_id, index, actors)?;
        let (residence, _) =
            crate::users::store::residence(&mut connection, user_id)?.unwrap_or_default();
        let settles_in_usdt = index % 3 == 1;
        let (asset, network, booked) = if settles_in_usdt {
            ("USDT", "tron", TRON_BOOKED)
        } else {
            ("BTC", "bitcoin", BTC_BOOKED[index % BTC_BOOKED.len()])
        };
        write_transaction(&mut connection, |connection| {
            let (entry, _) = book.add(
                connection,
                NewAddress {
                    user_id: user_id.clone(),
                    network: network.into(),
                    address: booked.into(),
                    label: Some("own wallet".into()),
                },
                actors.platform,
                None,
            )?;
            book.approve(
                connection,
                user_id,
                &entry.id,
                "confirmed by a call to the phone number on file",
                actors.officer,
                None,
            )
        })?;
        todays_payout(&mut connection, state, external_ref, user_id, asset)?;

        let beneficiary = serde_json::json!({
            "name": NAMES[index].0, "wallet": "self_hosted", "country": NAMES[index].1,
        });
        let withdraw = |connection: &mut DbConnection, amount: String, address: &str| {
            write_transaction_planned(connection, Plans::Cached, |connection| {
                gate.request(
                    connection,
                    &Request {
                        user_id: user_id.clone(),
                        asset: asset.into(),
                        amount,
                        network: network.into(),
                        address: address.into(),
                        beneficiary: Some(beneficiary.clone()),
                        beneficiary_complete: true,
                    },
                    actors.platform,
                    None,
                )
                .and_then(|(view, writes)| {
                    writes.write(connection, &[])?;
                    Ok(view)
                })
            })
        };
        let mut decisions = Vec::new();
        match residence.as_str() {
            // Three withdrawals each just under the 8,000 HKD travel-rule threshold.
            "HK" => {
                let amount = amount_for(&mut connection, state, asset, "HKD", 7_650)?;
                for _ in 0..3 {
                    decisions.push(withdraw(&mut connection, amount.clone(), booked)?);
                }
            }
            // To an address outside the book: held in Switzerland, refused in Singapore.
            "CH" => decisions.push(withdraw(&mut connection, "150".into(), TRON_UNLISTED)?),
            "SG" => {
                decisions.push(withdraw(&mut connection, "0.002".into(), booked)?);
                decisions.push(withdraw(&mut connection, "0.001".into(), BTC_BOOKED[0])?);
            }
            // A new address added today is still cooling off.
            "GB" => {
                write_transaction(&mut connection, |connection| {
                    book.add(
                        connection,
                        NewAddress {
                            user_id: user_id.clone(),
                            network: network.into(),
                            address: BTC_BOOKED[2].into(),
                            label: Some("new hardware wallet".into()),
                        },
                        actors.platform,
                        None,
                    )
                })?;
                decisions.push(withdraw(&mut connection, "0.001".into(), BTC_BOOKED[2])?);
                decisions.push(withdraw(&mut connection, "0.002".into(), booked)?);
            }
            _ => {
                let amount = if settles_in_usdt { "120" } else { "0.002" };
                decisions.push(withdraw(&mut connection, amount.into(), booked)?);
            }
        }
        summary.withdrawals += decisions.len();
        summary.held += decisions
            .iter()
            .filter(|view| view.decision == GateDecision::Held)
            .count();
    }
    let open = crate::aml::monitoring::store::list_alerts(
        &mut connection,
        &crate::aml::monitoring::store::AlertFilter {
            status: Some("open".into()),
            limit: 500,
            ..Default::default()
        },
    )?;
    summary.alerts = open.len();
    // The structuring alert is already a case, with the officer's first note.
    if let Some(structuring) = open
        .iter()
        .find(|alert| alert.rule_id.as_deref() == Some("structuring"))
    {
        write_transaction(&mut connection, |connection| {
            let detail = cases::open(
                connection,
                "Repeated withdrawals just under the travel-rule threshold",
                std::slice::from_ref(&structuring.id),
                actors.officer,
                None,
            )?;
            cases::add_note(
                connection,
                &state.cipher,
                &detail.case.id,
                "Asked the user why the withdrawals were split; waiting for the answer.",
                None,
                actors.officer,
                None,
            )
        })?;
        summary.cases = 1;
    }
    Ok(summary)
}

/// Tier 2 through the KYC service: submitted by the platform, approved by the officer.
fn verify(
    connection: &mut DbConnection,
    state: &AppState,
    user_id: &str,
    index: usize,
    actors: &Actors,
) -> Result<(), AppError> {
    let kyc = Kyc {
        cipher: &state.cipher,
        screener: &state.screener,
        jurisdictions: &state.jurisdictions,
    };
    let user = crate::users::store::find(connection, &state.cipher, user_id)?;
    let (name, nationality) = NAMES[index];
    let personal_data = PersonalData {
        legal_name: name.into(),
        latin_name: None,
        date_of_birth: user
            .date_of_birth
            .unwrap_or(NaiveDate::from_ymd_opt(1985, 1, 1).unwrap_or_default()),
        nationality: nationality.into(),
        residence: user.residence_jurisdiction.clone(),
        address: user.address.clone(),
        identity_document: Some(IdentityDocument {
            document_type: "passport".into(),
            number: format!("D{:08}", 71_000_000 + index * 7_331),
            issuing_country: nationality.into(),
            expires_on: NaiveDate::from_ymd_opt(2031, 3, 31).unwrap_or_default(),
        }),
        pep_declared: false,
        occupation: Some("Self-employed miner".into()),
        source_of_funds: None,
        source_of_wealth: None,
    };
    write_transaction(connection, |connection| {
        let submitted = kyc.submit(
            connection,
            &Submission {
                user_id: user_id.into(),
                target_tier: Tier::VERIFIED,
                personal_data,
                documents: documents_for(2)?,
            },
            actors.platform,
            None,
        )?;
        // An officer approves; where four eyes apply, the senior officer confirms.
        for (actor, role) in [
            (actors.officer, Role::Officer),
            (actors.senior, Role::SeniorOfficer),
        ] {
            kyc.claim(connection, &submitted.id, actor, role, None)?;
            let status = kyc.decide(
                connection,
                &submitted.id,
                &Decision::Approve,
                "Passport, selfie and utility bill match.",
                actor,
                role,
                None,
            )?;
            if status != crate::kyc::ApplicationStatus::ApprovalPending {
                break;
            }
        }
        Ok(())
    })
}

/// Today's settlement, two hours ago: larger than a day's mining, as after a rental ended.
fn todays_payout(
    connection: &mut DbConnection,
    state: &AppState,
    external_ref: &str,
    user_id: &str,
    asset: &str,
) -> Result<(), AppError> {
    let now = crate::db::now();
    let amount = if asset == "USDT" { "2500" } else { "0.05" };
    let rows = [PayoutInput {
        user_id: user_id.into(),
        asset: asset.into(),
        amount: amount.into(),
        occurred_at: format!(
            "{}Z",
            (now - Duration::hours(2)).format("%Y-%m-%dT%H:%M:%S")
        ),
        order_id: format!("ord-{external_ref}-settle"),
        facility_id: "qc-montreal-1".into(),
        external_id: format!("demo-{external_ref}-settlement"),
    }];
    let assets = ledger::load_assets(connection)?;
    let payouts = validate_batch(&rows, &assets, now).map_err(AppError::Validation)?;
    write_transaction(connection, |connection| {
        ledger::ingest_payouts(
            connection,
            "demo",
            payouts,
            &Actor::command_line(),
            None,
            state.price_staleness,
        )
        .map(|_| ())
    })
}

/// The amount of `asset` worth `local` units of `currency` at the latest rates, rounded down to
/// the asset's scale.
fn amount_for(
    connection: &mut DbConnection,
    state: &AppState,
    asset: &str,
    currency: &str,
    local: i64,
) -> Result<String, AppError> {
    let now = crate::db::now();
    let mut rate = |base: &str, quote: &str| -> Result<Decimal, AppError> {
        ledger::current_rate(connection, base, quote, now, state.price_staleness)?
            .map(|(rate, _)| rate)
            .ok_or_else(|| {
                AppError::internal(anyhow::anyhow!(
                    "the demo has no current {base}/{quote} rate"
                ))
            })
    };
    let per_unit = rate(asset, "USD")? * rate("USD", currency)?;
    let scale = ledger::load_assets(connection)?
        .get(asset)
        .map_or(8, |found| found.scale);
    Ok((Decimal::from(local) / per_unit)
        .round_dp_with_strategy(scale, RoundingStrategy::ToZero)
        .to_string())
}
