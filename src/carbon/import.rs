//! `hashgate import emission-factors` and `hashgate import certificates`: the same checks and
//! the same all-or-nothing writes as the API, from files, with the operator in the audit log.

use std::io::Read;
use std::path::Path;

use anyhow::Context;

use super::factors::{self, FactorFormat, FactorRow};
use super::input::{valid_certificate, CertificateInput};
use super::matching::VintageRules;
use super::store::{self, MatchReport, NewCertificate};
use crate::audit::{Actor, NewAuditEntry};
use crate::db::{write_transaction, Db};
use crate::error::{AppError, FieldError};

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn described(path: &Path, errors: &[FieldError]) -> anyhow::Error {
    let lines: Vec<String> = errors
        .iter()
        .map(|error| format!("{}: {}", error.field, error.message))
        .collect();
    anyhow::anyhow!("{} has bad rows:\n{}", path.display(), lines.join("\n"))
}

fn problem(error: AppError) -> anyhow::Error {
    match error {
        AppError::Validation(errors) | AppError::ConflictingRows(errors) => {
            let lines: Vec<String> = errors
                .iter()
                .map(|error| format!("{}: {}", error.field, error.message))
                .collect();
            anyhow::anyhow!(lines.join("\n"))
        }
        other => anyhow::anyhow!(other.problem().detail),
    }
}

/// Where a factor file comes from and how to read it.
pub struct FactorSource<'a> {
    pub path: &'a Path,
    pub format: FactorFormat,
    /// The dataset version recorded with every factor (e.g. the publication date).
    pub version: &'a str,
    /// For `canada-provinces`: the per-source factors file and the mix's year.
    pub per_source: Option<&'a Path>,
    pub year: Option<i32>,
}

/// Reads a factor file and stores its factors: (stored, already stored).
pub fn import_factors(db: &Db, source: &FactorSource<'_>) -> anyhow::Result<(usize, usize)> {
    let text = read(source.path)?;
    let rows: Vec<FactorRow> = match source.format {
        FactorFormat::EmberCsv => factors::read_ember_csv(&text, source.version),
        FactorFormat::NordicJson => factors::read_nordic_json(&text, source.version),
        FactorFormat::Plain => factors::read_plain_csv(&text),
        FactorFormat::CanadaProvinces => {
            let per_source = source
                .per_source
                .context("--per-source FILE is required for canada-provinces")?;
            let year = source
                .year
                .context("--year is required for canada-provinces")?;
            factors::read_canada_provinces(&text, &read(per_source)?, year, source.version)
        }
    }
    .map_err(|errors| described(source.path, &errors))?;
    let problems: Vec<FieldError> = rows
        .iter()
        .flat_map(|row| {
            factors::check(row)
                .into_iter()
                .map(|message| FieldError::new(&row.zone, "invalid_factor", message))
        })
        .collect();
    if !problems.is_empty() {
        return Err(described(source.path, &problems));
    }
    let mut connection = db.connection().map_err(problem)?;
    write_transaction(&mut connection, |connection| {
        let counts = store::insert_factors(connection, &rows, crate::db::now())?;
        crate::audit::store::append(
            connection,
            NewAuditEntry::new(
                Actor::command_line(),
                "emission_factors.load",
                "emission_factors",
                &source.path.display().to_string(),
                None,
            )
            .details(serde_json::json!({"inserted": counts.0, "unchanged": counts.1})),
        )?;
        Ok::<_, AppError>(counts)
    })
    .map_err(problem)
}

/// Reads and checks a certificate CSV (the API's fields as columns): every certificate, or every
/// bad row's errors named `certificates[i].field`.
pub fn read_certificates(input: impl Read) -> Result<Vec<NewCertificate>, Vec<FieldError>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let mut errors = Vec::new();
    let mut certificates = Vec::new();
    for (index, record) in reader.deserialize::<CertificateInput>().enumerate() {
        match record {
            Ok(input) => certificates.extend(valid_certificate(index, &input, &mut errors)),
            Err(error) => errors.push(FieldError::new(
                format!("certificates[{index}]"),
                "invalid_row",
                error.to_string(),
            )),
        }
    }
    if errors.is_empty() {
        Ok(certificates)
    } else {
        Err(errors)
    }
}

/// Imports a certificate CSV (the API's fields as columns) in one transaction, then matches
/// open orders: (certificates imported, what matching allocated).
pub fn import_certificates(
    db: &Db,
    path: &Path,
    vintage: &VintageRules,
) -> anyhow::Result<(usize, MatchReport)> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let certificates = read_certificates(file).map_err(|errors| described(path, &errors))?;
    let actor = Actor::command_line();
    let mut connection = db.connection().map_err(problem)?;
    write_transaction(&mut connection, |connection| {
        let now = crate::db::now();
        let ids = store::insert_certificates(connection, &certificates, &actor.id, now)?;
        let report = store::match_all(connection, vintage, &actor.id, now)?;
        crate::audit::store::append(
            connection,
            NewAuditEntry::new(
                actor.clone(),
                "certificates.import",
                "certificates",
                &path.display().to_string(),
                None,
            )
            .details(serde_json::json!({"imported": ids.len(), "allocations": report.allocations})),
        )?;
        Ok::<_, AppError>((ids.len(), report))
    })
    .map_err(problem)
}
