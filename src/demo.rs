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

/// (external_ref, email, residence, language, birth date, address)
const USERS: [(&str, &str, &str, &str, (i32, u32, u32), &str); 6] = [
    ("plat-u-100234", "wei.zhang@example.hk", "HK", "zh-Hant-HK", (1988, 4, 12), "Flat 12B, 88 Queen's Road Central, Hong Kong"),
    ("plat-u-100235", "lena.mueller@example.ch", "CH", "de-CH", (1979, 9, 30), "Bahnhofstrasse 21, 8001 Zürich"),
    ("plat-u-100236", "aigerim.bekova@example.kz", "KZ", "ru", (1992, 1, 17), "Dostyk Ave 5, Almaty 050010"),
    ("plat-u-100237", "tan.wei.ming@example.sg", "SG", "en-SG", (1985, 6, 3), "1 Raffles Place #20-01, Singapore 048616"),
    ("plat-u-100238", "hiroshi.sato@example.jp", "JP", "ja", (1990, 11, 8), "2-1 Marunouchi, Chiyoda-ku, Tokyo"),
    ("plat-u-100239", "sean.obrien@example.ie", "GB", "en-GB", (1983, 3, 22), "14 Deansgate, Manchester M3 2EY"),
];

pub fn seed(connection: &mut DbConnection, cipher: &FieldCipher) -> Result<DemoData, AppError> {
    let actor = Actor::command_line();
    write_transaction(connection, |connection| {
        let mut user_ids = Vec::new();
        for (external_ref, email, residence, language, (year, month, day), address) in USERS {
            let user = users::insert(
                connection,
                cipher,
                &NewUser {
                    external_ref: external_ref.to_string(),
                    email: email.to_string(),
                    residence_jurisdiction: residence.to_string(),
                    preferred_language: language.to_string(),
                    date_of_birth: NaiveDate::from_ymd_opt(year, month, day),
                    address: Some(address.to_string()),
                },
            )?;
            crate::audit::store::append(
                connection,
                crate::audit::NewAuditEntry::new(actor.clone(), "user.create", "user", &user.id, None)
                    .reason(Some("demo data".into())),
            )?;
            user_ids.push((user.external_ref, user.id));
        }
        let first_user = user_ids.first().map(|(_, id)| id.clone());
        let grants = [
            (Role::Admin, "Demo administrator", None, None),
            (Role::Platform, "Demo platform backend", None, None),
            (Role::Officer, "Demo compliance officer", None, None),
            (Role::SeniorOfficer, "Demo senior officer (MLRO)", None, None),
            (Role::Regulator, "Demo regulator, SFC Hong Kong", Some("HK"), None),
            (Role::Regulator, "Demo regulator, MAS Singapore", Some("SG"), None),
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
