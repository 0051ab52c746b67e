//! Demo data for `hashgate demo`: realistic users and a token for every role.

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
        Ok(DemoData {
            user_ids,
            tokens: demo_tokens,
        })
    })
}
