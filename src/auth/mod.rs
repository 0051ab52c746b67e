//! API tokens, roles and the authenticated caller.

pub mod routes;
pub mod store;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::Actor;
use crate::crypto::sha256_hex;
use crate::error::AppError;

/// Prefix of every token, so a leaked token is recognisable by secret scanners.
pub const TOKEN_PREFIX: &str = "hgt_";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The platform's backend: posts payouts, orders, users, withdrawal requests.
    Platform,
    /// A platform user: sees their own records only.
    User,
    /// Works the KYC queue, AML alerts and cases, held withdrawals.
    Officer,
    /// An officer who may give the second approval where four eyes are required.
    SeniorOfficer,
    /// Reads reports and exports of their own jurisdiction.
    Regulator,
    /// Tokens, lists, jurisdiction reloads, report schedules.
    Admin,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Platform,
        Role::User,
        Role::Officer,
        Role::SeniorOfficer,
        Role::Regulator,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Platform => "platform",
            Role::User => "user",
            Role::Officer => "officer",
            Role::SeniorOfficer => "senior_officer",
            Role::Regulator => "regulator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == value)
    }

    /// Officers and senior officers work cases; several endpoints admit both.
    pub const OFFICERS: [Role; 2] = [Role::Officer, Role::SeniorOfficer];

    /// Officers work the console's queues; users download their statements there; regulators
    /// their jurisdiction's reports.
    pub fn may_use_console(self) -> bool {
        Role::OFFICERS.contains(&self) || self == Role::User || self == Role::Regulator
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub token_id: String,
    pub name: String,
    pub role: Role,
    pub jurisdiction: Option<String>,
    pub user_id: Option<String>,
}

impl Caller {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), AppError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(AppError::Forbidden(format!(
                "the {} role may not do this; allowed: {}",
                self.role,
                allowed.join(", ")
            )))
        }
    }

    /// A `user` caller may reach only their own records; `staff` roles reach everyone's.
    pub fn require_self_or(&self, user_id: &str, staff: &[Role]) -> Result<(), AppError> {
        if self.role == Role::User && self.user_id.as_deref() == Some(user_id) {
            return Ok(());
        }
        if self.role == Role::User {
            return Err(AppError::Forbidden(
                "a user may only read their own records".into(),
            ));
        }
        self.require(staff)
    }

    pub fn actor(&self) -> Actor {
        Actor {
            id: self.token_id.clone(),
            name: self.name.clone(),
            role: self.role.as_str().to_string(),
        }
    }

    /// Idempotency keys are scoped to the token that sent them.
    pub fn idempotency_scope(&self) -> String {
        format!("token:{}", self.token_id)
    }
}

/// A new random token: the secret to show once, and the hash to store.
pub fn generate_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_token(&secret);
    (secret, hash)
}

pub fn hash_token(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

/// What a new token is for; checked before it is stored.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub name: String,
    pub role: Role,
    pub jurisdiction: Option<String>,
    pub user_id: Option<String>,
}

impl TokenGrant {
    /// A regulator token needs a jurisdiction, a user token a user; other roles take neither.
    pub fn validate(&self) -> Result<(), AppError> {
        let mut errors = Vec::new();
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            errors.push(crate::error::FieldError::new(
                "name",
                "length",
                "must be 1 to 100 characters",
            ));
        }
        match (self.role, &self.jurisdiction) {
            (Role::Regulator, None) => errors.push(crate::error::FieldError::new(
                "jurisdiction",
                "required",
                "a regulator token needs the jurisdiction it may read",
            )),
            (Role::Regulator, Some(code)) if !crate::jurisdiction::is_country_code(code) => errors
                .push(crate::error::FieldError::new(
                    "jurisdiction",
                    "invalid_country",
                    format!("`{code}` is not an ISO 3166-1 alpha-2 code"),
                )),
            (Role::Regulator, Some(_)) => {}
            (_, Some(_)) => errors.push(crate::error::FieldError::new(
                "jurisdiction",
                "not_allowed",
                "only regulator tokens are bound to a jurisdiction",
            )),
            (_, None) => {}
        }
        match (self.role, &self.user_id) {
            (Role::User, None) => errors.push(crate::error::FieldError::new(
                "user_id",
                "required",
                "a user token needs the user it belongs to",
            )),
            (Role::User, Some(_)) => {}
            (_, Some(_)) => errors.push(crate::error::FieldError::new(
                "user_id",
                "not_allowed",
                "only user tokens are bound to a user",
            )),
            (_, None) => {}
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let (secret, hash) = generate_token();
        let (other, _) = generate_token();
        assert!(secret.starts_with(TOKEN_PREFIX));
        assert_ne!(secret, other);
        assert_eq!(hash, hash_token(&secret));
        assert_eq!(hash.len(), 64);
    }

    #[test]
    fn grants_bind_regulators_to_a_jurisdiction_and_users_to_a_user() {
        let grant = |role, jurisdiction: Option<&str>, user: Option<&str>| TokenGrant {
            name: "t".into(),
            role,
            jurisdiction: jurisdiction.map(str::to_string),
            user_id: user.map(str::to_string),
        };
        assert!(grant(Role::Regulator, Some("HK"), None).validate().is_ok());
        assert!(grant(Role::Regulator, None, None).validate().is_err());
        assert!(grant(Role::Regulator, Some("XX"), None).validate().is_err());
        assert!(grant(Role::User, None, Some("u")).validate().is_ok());
        assert!(grant(Role::User, None, None).validate().is_err());
        assert!(grant(Role::Admin, Some("HK"), None).validate().is_err());
        assert!(grant(Role::Officer, None, Some("u")).validate().is_err());
    }

    #[test]
    fn users_reach_only_their_own_records() {
        let caller = Caller {
            token_id: "t".into(),
            name: "n".into(),
            role: Role::User,
            jurisdiction: None,
            user_id: Some("u1".into()),
        };
        assert!(caller.require_self_or("u1", &[Role::Admin]).is_ok());
        assert!(caller.require_self_or("u2", &[Role::Admin]).is_err());
        let admin = Caller {
            role: Role::Admin,
            user_id: None,
            ..caller
        };
        assert!(admin.require_self_or("u2", &[Role::Admin]).is_ok());
        assert!(admin.require_self_or("u2", &[Role::Officer]).is_err());
    }
}
