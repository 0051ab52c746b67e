//! The address book that protects earnings from hijacking: a user withdraws only to addresses in
//! their book, a new entry is usable after the jurisdiction's cooling-off period (or an officer's
//! approval), and every addition or removal is e-mailed to the user.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::{store as audit, Actor, NewAuditEntry};
use crate::crypto::FieldCipher;
use crate::db::schema::withdrawal_addresses;
use crate::db::DbConnection;
use crate::error::AppError;
use crate::notify::outbox::{self, Related};

#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable, Insertable)]
#[diesel(table_name = withdrawal_addresses)]
pub struct AddressEntry {
    pub id: String,
    pub user_id: String,
    pub network: String,
    pub address: String,
    pub label: Option<String>,
    pub added_by: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub added_at: NaiveDateTime,
    /// When the cooling-off period ends.
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub usable_from: NaiveDateTime,
    pub approved_by: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::utc::option")]
    pub approved_at: Option<NaiveDateTime>,
    pub approval_reason: Option<String>,
    pub removed_by: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::utc::option")]
    pub removed_at: Option<NaiveDateTime>,
}

/// Where a destination stands in the user's book at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookStatus {
    Usable,
    CoolingOff { until: NaiveDateTime },
    Unlisted,
}

impl BookStatus {
    /// The standing at `now` of a current (not removed) entry.
    pub fn of_current(usable_from: NaiveDateTime, approved: bool, now: NaiveDateTime) -> Self {
        if approved || usable_from <= now {
            BookStatus::Usable
        } else {
            BookStatus::CoolingOff { until: usable_from }
        }
    }
}

/// The user's current (not removed) entry for an address on a network.
#[diesel::dsl::auto_type]
pub fn current_entry<'a>(user_id: &'a str, network: &'a str, address: &'a str) -> _ {
    withdrawal_addresses::table
        .filter(withdrawal_addresses::user_id.eq(user_id))
        .filter(withdrawal_addresses::network.eq(network))
        .filter(withdrawal_addresses::address.eq(address))
        .filter(withdrawal_addresses::removed_at.is_null())
}

fn current(
    connection: &mut DbConnection,
    user_id: &str,
    network: &str,
    address: &str,
) -> QueryResult<Option<AddressEntry>> {
    current_entry(user_id, network, address)
        .select(AddressEntry::as_select())
        .first(connection)
        .optional()
}

pub fn insert(connection: &mut DbConnection, entry: &AddressEntry) -> QueryResult<()> {
    diesel::insert_into(withdrawal_addresses::table)
        .values(entry)
        .execute(connection)?;
    Ok(())
}

/// The user's book, current entries first, newest first.
pub fn list(connection: &mut DbConnection, user_id: &str) -> QueryResult<Vec<AddressEntry>> {
    let mut entries: Vec<AddressEntry> = withdrawal_addresses::table
        .filter(withdrawal_addresses::user_id.eq(user_id))
        .order(withdrawal_addresses::added_at.desc())
        .select(AddressEntry::as_select())
        .load(connection)?;
    entries.sort_by_key(|entry| entry.removed_at.is_some());
    Ok(entries)
}

fn find(connection: &mut DbConnection, user_id: &str, id: &str) -> Result<AddressEntry, AppError> {
    withdrawal_addresses::table
        .find(id)
        .filter(withdrawal_addresses::user_id.eq(user_id))
        .select(AddressEntry::as_select())
        .first(connection)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no address {id} in this user's book")))
}

/// The address book's operations, with what they need to notify and audit.
pub struct AddressBook<'a> {
    pub cipher: &'a FieldCipher,
    pub jurisdictions: &'a crate::jurisdiction::Jurisdictions,
}

pub struct NewAddress {
    pub user_id: String,
    pub network: String,
    pub address: String,
    pub label: Option<String>,
}

impl AddressBook<'_> {
    /// Adds an address (already checked for its network), usable after the cooling-off period of
    /// the user's jurisdiction; the user is e-mailed. Adding a current entry again returns it.
    pub fn add(
        &self,
        connection: &mut DbConnection,
        new: NewAddress,
        actor: &Actor,
        request_id: Option<String>,
    ) -> Result<(AddressEntry, bool), AppError> {
        let user = crate::users::store::find(connection, self.cipher, &new.user_id)?;
        if let Some(existing) = current(connection, &new.user_id, &new.network, &new.address)? {
            return Ok((existing, false));
        }
        let jurisdiction = self.jurisdiction_of(connection, &user)?;
        let now = crate::db::now();
        let hours = jurisdiction.withdrawals.address_cooling_off_hours;
        let entry = AddressEntry {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: new.user_id,
            network: new.network,
            address: new.address,
            label: new.label,
            added_by: actor.id.clone(),
            added_at: now,
            usable_from: now + Duration::hours(i64::from(hours)),
            approved_by: None,
            approved_at: None,
            approval_reason: None,
            removed_by: None,
            removed_at: None,
        };
        insert(connection, &entry)?;
        let usable_from = entry
            .usable_from
            .and_utc()
            .with_timezone(&jurisdiction.time_zone)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string();
        self.notify(
            connection,
            &user,
            "address_added",
            &entry,
            &[("usable_from", usable_from)],
        )?;
        self.audit(
            connection,
            actor,
            "withdrawal_address.add",
            &entry,
            request_id,
            None,
        )?;
        Ok((entry, true))
    }

    /// Removes an entry (it stays in the history); the user is e-mailed.
    pub fn remove(
        &self,
        connection: &mut DbConnection,
        user_id: &str,
        id: &str,
        actor: &Actor,
        request_id: Option<String>,
    ) -> Result<AddressEntry, AppError> {
        let mut entry = find(connection, user_id, id)?;
        if entry.removed_at.is_some() {
            return Ok(entry);
        }
        let now = crate::db::now();
        diesel::update(withdrawal_addresses::table.find(id))
            .filter(withdrawal_addresses::removed_at.is_null())
            .set((
                withdrawal_addresses::removed_by.eq(&actor.id),
                withdrawal_addresses::removed_at.eq(now),
            ))
            .execute(connection)?;
        entry.removed_by = Some(actor.id.clone());
        entry.removed_at = Some(now);
        let user = crate::users::store::find(connection, self.cipher, user_id)?;
        self.notify(connection, &user, "address_removed", &entry, &[])?;
        self.audit(
            connection,
            actor,
            "withdrawal_address.remove",
            &entry,
            request_id,
            None,
        )?;
        Ok(entry)
    }

    /// An officer lets an entry receive withdrawals before its cooling-off period ends.
    pub fn approve(
        &self,
        connection: &mut DbConnection,
        user_id: &str,
        id: &str,
        reason: &str,
        actor: &Actor,
        request_id: Option<String>,
    ) -> Result<AddressEntry, AppError> {
        let mut entry = find(connection, user_id, id)?;
        if entry.removed_at.is_some() {
            return Err(AppError::Conflict(
                "the address was removed from the book".into(),
            ));
        }
        if entry.approved_at.is_some() {
            return Ok(entry);
        }
        let now = crate::db::now();
        diesel::update(withdrawal_addresses::table.find(id))
            .set((
                withdrawal_addresses::approved_by.eq(&actor.id),
                withdrawal_addresses::approved_at.eq(now),
                withdrawal_addresses::approval_reason.eq(reason),
            ))
            .execute(connection)?;
        entry.approved_by = Some(actor.id.clone());
        entry.approved_at = Some(now);
        entry.approval_reason = Some(reason.to_string());
        self.audit(
            connection,
            actor,
            "withdrawal_address.approve",
            &entry,
            request_id,
            Some(reason),
        )?;
        Ok(entry)
    }

    fn jurisdiction_of<'j>(
        &'j self,
        connection: &mut DbConnection,
        user: &crate::users::store::User,
    ) -> Result<&'j crate::jurisdiction::Jurisdiction, AppError> {
        let code = crate::kyc::store::profile(connection, &user.id)?
            .map(|profile| profile.jurisdiction)
            .unwrap_or_else(|| user.residence_jurisdiction.clone());
        self.jurisdictions.get(&code).ok_or_else(|| {
            AppError::invalid_field(
                "user_id",
                "unsupported_jurisdiction",
                format!("hashgate has no rules for the user's jurisdiction {code}"),
            )
        })
    }

    fn notify(
        &self,
        connection: &mut DbConnection,
        user: &crate::users::store::User,
        template: &str,
        entry: &AddressEntry,
        extra: &[(&'static str, String)],
    ) -> Result<(), AppError> {
        let mut values: BTreeMap<&str, String> = BTreeMap::from([
            ("address", entry.address.clone()),
            ("network", entry.network.clone()),
        ]);
        values.extend(extra.iter().cloned());
        outbox::enqueue(
            connection,
            self.cipher,
            template,
            (&user.email, &user.preferred_language),
            &values,
            Related {
                kind: "withdrawal_address",
                id: &entry.id,
            },
        )?;
        Ok(())
    }

    fn audit(
        &self,
        connection: &mut DbConnection,
        actor: &Actor,
        action: &str,
        entry: &AddressEntry,
        request_id: Option<String>,
        reason: Option<&str>,
    ) -> Result<(), AppError> {
        let record = NewAuditEntry::new(
            actor.clone(),
            action,
            "withdrawal_address",
            &entry.id,
            request_id,
        )
        .reason(reason.map(str::to_string))
        .details(serde_json::json!({
            "user_id": entry.user_id,
            "network": entry.network,
            "address": entry.address,
            "usable_from": entry.usable_from,
        }));
        audit::append(connection, record)?;
        Ok(())
    }
}
