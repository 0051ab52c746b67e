//! Daily jobs across processes: one row per job and UTC day in `scheduled_runs`, so of several
//! instances exactly one runs each day's job.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::scheduled_runs;
use super::{write_transaction, DbConnection};
use crate::error::AppError;

/// Claims today's run of `job`: true for exactly one caller per UTC day.
pub fn claim(
    connection: &mut DbConnection,
    job: &str,
    now: NaiveDateTime,
) -> Result<bool, AppError> {
    write_transaction(connection, |connection| {
        let taken: i64 = scheduled_runs::table
            .filter(scheduled_runs::job.eq(job))
            .filter(scheduled_runs::run_date.eq(now.date()))
            .count()
            .get_result(connection)?;
        if taken > 0 {
            return Ok(false);
        }
        diesel::insert_into(scheduled_runs::table)
            .values((
                scheduled_runs::job.eq(job),
                scheduled_runs::run_date.eq(now.date()),
                scheduled_runs::started_at.eq(now),
            ))
            .execute(connection)?;
        Ok(true)
    })
}

/// Records that today's run of `job` finished, with its summary.
pub fn finish(
    connection: &mut DbConnection,
    job: &str,
    now: NaiveDateTime,
    summary: &str,
) -> QueryResult<()> {
    diesel::update(
        scheduled_runs::table
            .filter(scheduled_runs::job.eq(job))
            .filter(scheduled_runs::run_date.eq(now.date())),
    )
    .set((
        scheduled_runs::finished_at.eq(super::now()),
        scheduled_runs::summary.eq(summary),
    ))
    .execute(connection)?;
    Ok(())
}
