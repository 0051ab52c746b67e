//! Demo data for `hashgate demo`: realistic users, a token for every role, a ledger, the
//! sanctions lists when they are at hand, and a queue of KYC applications.

pub mod carbon;
pub mod kyc;
pub mod reports;
pub mod withdrawals;

use chrono::NaiveDate;

use crate::audit::Actor;
use crate::auth::{generate_token, store as tokens, Role, TokenGrant};
use crate::crypto::FieldCipher;
use crate::db::{write_transaction, DbConnection};
use crate::error::AppError;
use crate::users::{store as users, NewUser};

pub struct DemoToken {
    pub role: Role,
    pub name: String,
    pub secret: String,
}

pub struct DemoData {
    pub user_ids: Vec<(String, String)>,
    pub tokens: Vec<DemoToken>,
    pub ledger: DemoLedger,
}

struct DemoUser {
    external_ref: &'static str,
    email: &'static str,
    residence: &'static str,
    language: &'static str,
    born: (i32, u32, u32),
    address: &'static str,
}

const USERS: [DemoUser; 6] = [
    DemoUser {
        external_ref: "plat-u-100234",
        email: "wei.zhang@example.hk",
        residence: "HK",
        language: "zh-Hant-HK",
        born: (1988, 4, 12),
        address: "Flat 12B, 88 Queen's Road Central, Hong Kong",
    },
    DemoUser {
        external_ref: "plat-u-100235",
        email: "lena.mueller@example.ch",
        residence: "CH",
        language: "de-CH",
        born: (1979, 9, 30),
        address: "Bahnhofstrasse 21, 8001 Zürich",
    },
    DemoUser {
        external_ref: "plat-u-100236",
        email: "aigerim.bekova@example.kz",
        residence: "KZ",
        language: "ru",
        born: (1992, 1, 17),
        address: "Dostyk Ave 5, Almaty 050010",
    },
    DemoUser {
        external_ref: "plat-u-100237",
        email: "tan.wei.ming@example.sg",
        residence: "SG",
        language: "en-SG",
        born: (1985, 6, 3),
        address: "1 Raffles Place #20-01, Singapore 048616",
    },
    DemoUser {
        external_ref: "plat-u-100238",
        email: "hiroshi.sato@example.jp",
        residence: "JP",
        language: "ja",
        born: (1990, 11, 8),
        address: "2-1 Marunouchi, Chiyoda-ku, Tokyo",
    },
    DemoUser {
        external_ref: "plat-u-100239",
        email: "sean.obrien@example.ie",
        residence: "GB",
        language: "en-GB",
        born: (1983, 3, 22),
        address: "14 Deansgate, Manchester M3 2EY",
    },
];

pub fn seed(connection: &mut DbConnection, cipher: &FieldCipher) -> Result<DemoData, AppError> {
    let actor = Actor::command_line();
    write_transaction(connection, |connection| {
        let mut user_ids = Vec::new();
        for demo_user in USERS {
            let (year, month, day) = demo_user.born;
            let user = users::insert(
                connection,
                cipher,
                &NewUser {
                    external_ref: demo_user.external_ref.to_string(),
                    email: demo_user.email.to_string(),
                    residence_jurisdiction: demo_user.residence.to_string(),
                    preferred_language: demo_user.language.to_string(),
                    date_of_birth: NaiveDate::from_ymd_opt(year, month, day),
                    address: Some(demo_user.address.to_string()),
                },
            )?;
            crate::audit::store::append(
                connection,
                crate::audit::NewAuditEntry::new(
                    actor.clone(),
                    "user.create",
                    "user",
                    &user.id,
                    None,
                )
                .reason(Some("demo data".into())),
            )?;
            user_ids.push((user.external_ref, user.id));
        }
        let first_user = user_ids.first().map(|(_, id)| id.clone());
        let grants = [
            (Role::Admin, "Demo administrator", None, None),
            (Role::Platform, "Demo platform backend", None, None),
            (Role::Officer, "Demo compliance officer", None, None),
            (
                Role::SeniorOfficer,
                "Demo senior officer (MLRO)",
                None,
                None,
            ),
            (
                Role::Regulator,
                "Demo regulator, SFC Hong Kong",
                Some("HK"),
                None,
            ),
            (
                Role::Regulator,
                "Demo regulator, MAS Singapore",
                Some("SG"),
                None,
            ),
            (Role::User, "Demo user plat-u-100234", None, first_user),
        ];
        let mut demo_tokens = Vec::new();
        for (role, name, jurisdiction, user_id) in grants {
            let (secret, hash) = generate_token();
            let grant = TokenGrant {
                name: name.to_string(),
                role,
                jurisdiction: jurisdiction.map(str::to_string),
                user_id,
            };
            tokens::create(connection, &grant, &hash, &actor, None)?;
            demo_tokens.push(DemoToken {
                role,
                name: name.to_string(),
                secret,
            });
        }
        let ledger = seed_ledger(connection, &user_ids, &actor, crate::db::now())?;
        Ok(DemoData {
            user_ids,
            tokens: demo_tokens,
            ledger,
        })
    })
}

/// What the demo ledger holds.
pub struct DemoLedger {
    pub days: i64,
    pub payouts: usize,
    pub rates: usize,
    pub fees: usize,
}

const DEMO_DAYS: i64 = 90;
const FACILITIES: [&str; 3] = ["qc-montreal-1", "no2-kristiansand", "kz-ekibastuz-2"];
/// USD→fiat rates the demo varies slightly around.
const FX: [(&str, i64, u32); 8] = [
    ("HKD", 778, 2),
    ("SGD", 129, 2),
    ("CHF", 80, 2),
    ("JPY", 15020, 2),
    ("KZT", 50500, 2),
    ("GBP", 76, 2),
    ("CNY", 712, 2),
    ("EUR", 92, 2),
];

/// ~90 days of simulated daily prices and payouts (the prices are a seeded random walk, not
/// market data), plus a monthly platform fee per user.
fn seed_ledger(
    connection: &mut DbConnection,
    user_ids: &[(String, String)],
    actor: &Actor,
    now: chrono::NaiveDateTime,
) -> Result<DemoLedger, AppError> {
    use crate::ledger::payouts::{validate_batch, PayoutInput};
    use crate::ledger::store::{self as ledger, NewRate, Transfer};
    use rand::{Rng, SeedableRng};
    use rust_decimal::Decimal;

    let mut random = rand::rngs::StdRng::seed_from_u64(2026);
    let today = now.date();
    let first_day = today - chrono::Duration::days(DEMO_DAYS);
    let mut rates = Vec::new();
    let mut btc_cents: i64 = 9_180_000;
    for offset in 0..=DEMO_DAYS {
        let as_of = (first_day + chrono::Duration::days(offset))
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default();
        btc_cents += btc_cents * random.gen_range(-250..=260) / 10_000;
        rates.push(NewRate {
            base: "BTC".into(),
            quote: "USD".into(),
            as_of,
            rate: Decimal::new(btc_cents, 2),
        });
        rates.push(NewRate {
            base: "USDT".into(),
            quote: "USD".into(),
            as_of,
            rate: Decimal::new(10_000 + random.gen_range(-6..=4), 4),
        });
        for (currency, base, scale) in FX {
            let wobble = Decimal::new(random.gen_range(-5..=5), scale + 2);
            rates.push(NewRate {
                base: "USD".into(),
                quote: currency.into(),
                as_of,
                rate: Decimal::new(base, scale) + wobble,
            });
        }
    }
    ledger::insert_rates(connection, &rates, "demo-simulated")?;

    let assets = ledger::load_assets(connection)?;
    let mut rows = Vec::new();
    for (index, (external_ref, user_id)) in user_ids.iter().enumerate() {
        let terahashes: i64 = random.gen_range(50..=500);
        let settles_in_usdt = index % 3 == 1;
        // Settled days end yesterday: today's payout time may still be ahead (just after
        // midnight UTC).
        for offset in 0..DEMO_DAYS {
            let day = first_day + chrono::Duration::days(offset);
            // Hashprice around 0.5 µBTC (≈ 0.05 USD) per TH/s per day, ±10 %.
            let (asset, amount) = if settles_in_usdt {
                let cents = terahashes * random.gen_range(450..=550) / 100;
                ("USDT", Decimal::new(cents, 2).to_string())
            } else {
                let satoshis = terahashes * random.gen_range(45..=55);
                ("BTC", Decimal::new(satoshis, 8).to_string())
            };
            rows.push(PayoutInput {
                user_id: user_id.clone(),
                asset: asset.to_string(),
                amount,
                occurred_at: format!("{}T00:{:02}:00Z", day, random.gen_range(5..55)),
                order_id: format!("ord-{external_ref}-1"),
                facility_id: FACILITIES[index % FACILITIES.len()].to_string(),
                external_id: format!("demo-{external_ref}-{day}"),
            });
        }
    }
    let payouts = validate_batch(&rows, &assets, now).map_err(AppError::Validation)?;
    let count = payouts.len();
    ledger::ingest_payouts(
        connection,
        "demo",
        payouts,
        actor,
        None,
        chrono::Duration::days(1),
    )?;

    // A platform fee of 3 % of what the user holds, every 30 days.
    let mut fees = 0;
    for (_, user_id) in user_ids {
        for month in 1..=DEMO_DAYS / 30 {
            let at = (first_day + chrono::Duration::days(month * 30))
                .and_hms_opt(12, 0, 0)
                .unwrap_or_default();
            for (asset, available, _) in ledger::user_balances(connection, user_id)? {
                let fee = available * 3 / 100;
                if fee > 0 {
                    ledger::record(
                        connection,
                        Transfer {
                            kind: crate::ledger::EntryKind::Fee,
                            user_id: user_id.clone(),
                            asset,
                            amount: fee,
                            occurred_at: at,
                            to_user: false,
                            reason: Some("monthly platform fee".into()),
                        },
                        actor,
                    )?;
                    fees += 1;
                }
            }
        }
    }
    Ok(DemoLedger {
        days: DEMO_DAYS,
        payouts: count,
        rates: rates.len(),
        fees,
    })
}
