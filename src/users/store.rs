//! User queries. Personal fields are encrypted before they reach the database.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::NewUser;
use crate::crypto::FieldCipher;
use crate::db::schema::users;
use crate::db::DbConnection;
use crate::error::AppError;

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
struct UserRow {
    id: String,
    external_ref: String,
    email_encrypted: String,
    residence_jurisdiction: String,
    preferred_language: String,
    date_of_birth_encrypted: Option<String>,
    address_encrypted: Option<String>,
    created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    pub id: String,
    pub external_ref: String,
    pub email: String,
    pub residence_jurisdiction: String,
    pub preferred_language: String,
    #[schema(value_type = Option<String>, format = Date)]
    pub date_of_birth: Option<NaiveDate>,
    pub address: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub created_at: NaiveDateTime,
}

/// The additional data binding a ciphertext to its column and row.
fn context(column: &str, id: &str) -> String {
    format!("users.{column}:{id}")
}

pub fn insert(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    new_user: &NewUser,
) -> Result<User, AppError> {
    let taken: i64 = users::table
        .filter(users::external_ref.eq(&new_user.external_ref))
        .count()
        .get_result(connection)?;
    if taken > 0 {
        return Err(AppError::Conflict(format!(
            "a user with external_ref `{}` is already registered",
            new_user.external_ref
        )));
    }
    let id = uuid::Uuid::new_v4().to_string();
    diesel::insert_into(users::table)
        .values((
            users::id.eq(&id),
            users::external_ref.eq(&new_user.external_ref),
            users::email_encrypted.eq(cipher.encrypt(&new_user.email, &context("email", &id))?),
            users::residence_jurisdiction.eq(&new_user.residence_jurisdiction),
            users::preferred_language.eq(&new_user.preferred_language),
            users::date_of_birth_encrypted.eq(new_user
                .date_of_birth
                .map(|date| cipher.encrypt(&date.to_string(), &context("date_of_birth", &id)))
                .transpose()?),
            users::address_encrypted.eq(new_user
                .address
                .as_ref()
                .map(|address| cipher.encrypt(address, &context("address", &id)))
                .transpose()?),
            users::created_at.eq(crate::db::now()),
        ))
        .execute(connection)?;
    find(connection, cipher, &id)
}

/// The users with these ids (unknown ids are left out), decrypted.
pub fn find_many(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    ids: &[String],
) -> Result<Vec<User>, AppError> {
    users::table
        .filter(users::id.eq_any(ids))
        .order(users::id.asc())
        .select(UserRow::as_select())
        .load(connection)?
        .into_iter()
        .map(|row| decrypt(cipher, row))
        .collect()
}

/// 404 unless the user exists.
pub fn require_exists(connection: &mut DbConnection, id: &str) -> Result<(), AppError> {
    let count: i64 = users::table
        .filter(users::id.eq(id))
        .count()
        .get_result(connection)?;
    if count == 0 {
        return Err(AppError::NotFound(format!("no user with id {id}")));
    }
    Ok(())
}

/// The user's residence jurisdiction and when their account was opened, or `None` for an unknown
/// user.
pub fn residence(
    connection: &mut DbConnection,
    id: &str,
) -> QueryResult<Option<(String, NaiveDateTime)>> {
    users::table
        .find(id)
        .select((users::residence_jurisdiction, users::created_at))
        .first(connection)
        .optional()
}

pub fn find(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    id: &str,
) -> Result<User, AppError> {
    let row: UserRow = users::table
        .find(id)
        .select(UserRow::as_select())
        .first(connection)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no user with id {id}")))?;
    decrypt(cipher, row)
}

fn decrypt(cipher: &FieldCipher, row: UserRow) -> Result<User, AppError> {
    let open = |column: &str, value: &str| {
        cipher
            .decrypt(value, &context(column, &row.id))
            .map_err(AppError::internal)
    };
    let date_of_birth = match &row.date_of_birth_encrypted {
        Some(value) => Some(
            open("date_of_birth", value)?
                .parse::<NaiveDate>()
                .map_err(AppError::internal)?,
        ),
        None => None,
    };
    let address = row
        .address_encrypted
        .as_deref()
        .map(|value| open("address", value))
        .transpose()?;
    Ok(User {
        email: open("email", &row.email_encrypted)?,
        date_of_birth,
        address,
        id: row.id,
        external_ref: row.external_ref,
        residence_jurisdiction: row.residence_jurisdiction,
        preferred_language: row.preferred_language,
        created_at: row.created_at,
    })
}
