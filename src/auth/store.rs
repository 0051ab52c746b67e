//! Token queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Caller, Role, TokenGrant};
use crate::audit::{self, Actor, NewAuditEntry};
use crate::db::schema::{api_tokens, users};
use crate::db::DbConnection;
use crate::error::AppError;

#[derive(Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
struct TokenRow {
    id: String,
    name: String,
    role: String,
    jurisdiction: Option<String>,
    user_id: Option<String>,
    created_at: NaiveDateTime,
    created_by: String,
    revoked_at: Option<NaiveDateTime>,
    revoked_by: Option<String>,
    revoke_reason: Option<String>,
}

/// A token as listed: never the secret, never the hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub jurisdiction: Option<String>,
    pub user_id: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub created_at: NaiveDateTime,
    pub created_by: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::utc::option")]
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_by: Option<String>,
    pub revoke_reason: Option<String>,
}

impl TryFrom<TokenRow> for TokenInfo {
    type Error = AppError;

    fn try_from(row: TokenRow) -> Result<Self, AppError> {
        let role = Role::parse(&row.role).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "token {} has unknown role {}",
                row.id,
                row.role
            ))
        })?;
        Ok(TokenInfo {
            id: row.id,
            name: row.name,
            role,
            jurisdiction: row.jurisdiction,
            user_id: row.user_id,
            created_at: row.created_at,
            created_by: row.created_by,
            revoked_at: row.revoked_at,
            revoked_by: row.revoked_by,
            revoke_reason: row.revoke_reason,
        })
    }
}

/// The caller holding this token hash, unless it is unknown or revoked.
pub fn authenticate(
    connection: &mut DbConnection,
    token_hash: &str,
) -> Result<Option<Caller>, AppError> {
    let row: Option<TokenRow> = api_tokens::table
        .filter(api_tokens::token_hash.eq(token_hash))
        .filter(api_tokens::revoked_at.is_null())
        .select(TokenRow::as_select())
        .first(connection)
        .optional()?;
    row.map(|row| {
        let info = TokenInfo::try_from(row)?;
        Ok(Caller {
            token_id: info.id,
            name: info.name,
            role: info.role,
            jurisdiction: info.jurisdiction,
            user_id: info.user_id,
        })
    })
    .transpose()
}

/// Stores a new token (its hash only) and audits it. Call inside a write transaction.
pub fn create(
    connection: &mut DbConnection,
    grant: &TokenGrant,
    token_hash: &str,
    actor: &Actor,
    request_id: Option<String>,
) -> Result<TokenInfo, AppError> {
    grant.validate()?;
    if let Some(user_id) = &grant.user_id {
        let exists: i64 = users::table
            .filter(users::id.eq(user_id))
            .count()
            .get_result(connection)?;
        if exists == 0 {
            return Err(AppError::invalid_field(
                "user_id",
                "unknown_user",
                format!("no user with id {user_id}"),
            ));
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let created_at = crate::db::now();
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::id.eq(&id),
            api_tokens::name.eq(grant.name.trim()),
            api_tokens::role.eq(grant.role.as_str()),
            api_tokens::jurisdiction.eq(&grant.jurisdiction),
            api_tokens::user_id.eq(&grant.user_id),
            api_tokens::token_hash.eq(token_hash),
            api_tokens::created_at.eq(created_at),
            api_tokens::created_by.eq(&actor.id),
        ))
        .execute(connection)?;
    audit::store::append(
        connection,
        NewAuditEntry::new(actor.clone(), "token.create", "token", &id, request_id).details(
            serde_json::json!({
                "name": grant.name.trim(),
                "role": grant.role.as_str(),
                "jurisdiction": grant.jurisdiction,
                "user_id": grant.user_id,
            }),
        ),
    )?;
    find(connection, &id)
}

pub fn find(connection: &mut DbConnection, id: &str) -> Result<TokenInfo, AppError> {
    let row: TokenRow = api_tokens::table
        .find(id)
        .select(TokenRow::as_select())
        .first(connection)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no token with id {id}")))?;
    TokenInfo::try_from(row)
}

pub fn list(
    connection: &mut DbConnection,
    include_revoked: bool,
    after_id: Option<&str>,
    limit: i64,
) -> Result<Vec<TokenInfo>, AppError> {
    let mut query = api_tokens::table.select(TokenRow::as_select()).into_boxed();
    if !include_revoked {
        query = query.filter(api_tokens::revoked_at.is_null());
    }
    if let Some(after) = after_id {
        query = query.filter(api_tokens::id.gt(after.to_string()));
    }
    query
        .order(api_tokens::id.asc())
        .limit(limit)
        .load::<TokenRow>(connection)?
        .into_iter()
        .map(TokenInfo::try_from)
        .collect()
}

/// Revokes a token and audits why. Revoking twice is refused, so the first reason stands.
pub fn revoke(
    connection: &mut DbConnection,
    id: &str,
    reason: &str,
    actor: &Actor,
    request_id: Option<String>,
) -> Result<TokenInfo, AppError> {
    let token = find(connection, id)?;
    if token.revoked_at.is_some() {
        return Err(AppError::Conflict(format!("token {id} is already revoked")));
    }
    diesel::update(api_tokens::table.find(id))
        .set((
            api_tokens::revoked_at.eq(crate::db::now()),
            api_tokens::revoked_by.eq(&actor.id),
            api_tokens::revoke_reason.eq(reason),
        ))
        .execute(connection)?;
    audit::store::append(
        connection,
        NewAuditEntry::new(actor.clone(), "token.revoke", "token", id, request_id)
            .reason(Some(reason.to_string()))
            .details(serde_json::json!({ "name": token.name, "role": token.role.as_str() })),
    )?;
    find(connection, id)
}
