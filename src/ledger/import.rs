//! Streaming CSV imports: constant memory, a progress bar on a terminal, rejected rows written to
//! a file with their reasons, and a checkpoint so an interrupted import resumes where it stopped.
//! Payouts are idempotent per (source, external id), so re-reading rows never duplicates them.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::payouts::{validate_row, PayoutInput, ValidPayout};
use super::rates::{validate_rates, RateInput};
use super::store;
use crate::audit::Actor;
use crate::db::{write_transaction, Db};
use crate::error::FieldError;

const PAYOUT_COLUMNS: [&str; 7] = [
    "user_id",
    "asset",
    "amount",
    "occurred_at",
    "order_id",
    "facility_id",
    "external_id",
];

/// Rows per transaction of a payout import unless told otherwise. Larger than an API batch: a
/// commit writes every page the batch touched (a user's index page once however many of their
/// rows it holds), so 25,000 rows a commit ingest a tenth faster on SQLite than 10,000, for
/// about 80 MB more memory.
pub const DEFAULT_BATCH_SIZE: usize = 25_000;
/// The most rows per transaction `--batch-size` accepts.
pub const MAX_BATCH_SIZE: usize = 100_000;

pub struct ImportOptions {
    pub source: String,
    /// Rows per transaction.
    pub batch_size: usize,
    pub rejects_path: PathBuf,
    pub checkpoint_path: PathBuf,
    pub show_progress: bool,
}

impl ImportOptions {
    /// Rejects and checkpoint files beside the imported file.
    pub fn beside(file: &Path, source: &str) -> ImportOptions {
        let with_suffix = |suffix: &str| {
            let mut name = file.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        ImportOptions {
            source: source.to_string(),
            batch_size: DEFAULT_BATCH_SIZE,
            rejects_path: with_suffix(".rejects.csv"),
            checkpoint_path: with_suffix(".checkpoint"),
            show_progress: true,
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub rows: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub unpriced: u64,
    /// The line the import resumed after, when a checkpoint was found.
    pub resumed_after_line: Option<u64>,
    pub elapsed: Duration,
}

/// Where the last committed batch ended.
struct Checkpoint {
    byte: u64,
    line: u64,
    record: u64,
}

impl Checkpoint {
    fn load(path: &Path, source: &str) -> Option<Checkpoint> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut fields = text.split_whitespace();
        let (byte, line, record) = (fields.next()?, fields.next()?, fields.next()?);
        if fields.next()? != source {
            return None;
        }
        Some(Checkpoint {
            byte: byte.parse().ok()?,
            line: line.parse().ok()?,
            record: record.parse().ok()?,
        })
    }

    /// Written to a temporary file and renamed, so a crash never leaves half a checkpoint.
    fn save(&self, path: &Path, source: &str) -> std::io::Result<()> {
        let temporary = path.with_extension("checkpoint.tmp");
        std::fs::write(
            &temporary,
            format!("{} {} {} {source}\n", self.byte, self.line, self.record),
        )?;
        std::fs::rename(temporary, path)
    }
}

fn progress_bar(total_bytes: u64, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total_bytes);
    bar.set_style(
        ProgressStyle::with_template("{wide_bar} {percent:>3}%  {msg}  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// A payout CSV reader positioned after its header, and the header; refuses a header without
/// every payout column. Rows are read with `record.deserialize::<PayoutInput>(Some(&header))`.
pub fn payout_csv<R: Read>(input: R) -> anyhow::Result<(csv::Reader<R>, csv::StringRecord)> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(input);
    let headers = reader.headers()?.clone();
    let missing: Vec<&str> = PAYOUT_COLUMNS
        .iter()
        .copied()
        .filter(|column| !headers.iter().any(|h| h == *column))
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "the header lacks {}; expected {}",
            missing.join(", "),
            PAYOUT_COLUMNS.join(",")
        );
    }
    Ok((reader, headers))
}

/// Imports payouts from a CSV with the header
/// `user_id,asset,amount,occurred_at,order_id,facility_id,external_id`.
pub fn import_payouts(
    db: &Db,
    path: &Path,
    options: &ImportOptions,
    actor: &Actor,
    staleness: chrono::Duration,
) -> anyhow::Result<ImportSummary> {
    let started = Instant::now();
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let total_bytes = file.metadata()?.len();
    let (mut reader, headers) =
        payout_csv(file).map_err(|error| anyhow::anyhow!("{}: {error:#}", path.display()))?;

    let mut summary = ImportSummary::default();
    if let Some(checkpoint) = Checkpoint::load(&options.checkpoint_path, &options.source) {
        let mut position = csv::Position::new();
        position
            .set_byte(checkpoint.byte)
            .set_line(checkpoint.line)
            .set_record(checkpoint.record);
        reader.seek(position)?;
        summary.resumed_after_line = Some(checkpoint.line);
    }
    let mut rejects = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&options.rejects_path)
        .with_context(|| format!("cannot write {}", options.rejects_path.display()))?;
    if rejects.metadata()?.len() == 0 {
        writeln!(rejects, "line,external_id,field,code,message")?;
    }

    let assets = {
        let mut connection = db
            .connection()
            .map_err(|e| anyhow::anyhow!(e.problem().detail))?;
        store::load_assets(&mut connection)?
    };
    let bar = progress_bar(total_bytes, options.show_progress);
    let mut connection = db
        .connection()
        .map_err(|e| anyhow::anyhow!(e.problem().detail))?;
    // Reading, parsing and validating the next batch runs on a thread of its own while this one
    // writes the last: the writer is the single SQLite writer, so it gets a core to itself.
    let mut reader = BatchReader {
        reader,
        headers,
        assets: &assets,
        batch_size: options.batch_size,
    };
    let batches = std::iter::from_fn(move || reader.next_batch().transpose());
    crate::pipeline::run_ahead(batches, 1, |batch| -> anyhow::Result<()> {
        let batch = batch?;
        summary.rows += batch.rows.len() as u64 + batch.malformed;
        let written = write_batch(&mut connection, batch, options, actor, staleness)?;
        summary.accepted += written.accepted;
        summary.duplicates += written.duplicates;
        summary.unpriced += written.unpriced;
        summary.rejected += written.rejected.len() as u64;
        for (line, external_id, error) in written.rejected {
            let field = error
                .field
                .rsplit('.')
                .next()
                .unwrap_or(&error.field)
                .to_string();
            write_reject(
                &mut rejects,
                line,
                &external_id,
                &field,
                &error.code,
                &error.message,
            )?;
        }
        rejects.flush()?;
        let position = written.end;
        Checkpoint {
            byte: position.byte(),
            line: position.line(),
            record: position.record(),
        }
        .save(&options.checkpoint_path, &options.source)?;
        bar.set_position(position.byte());
        bar.set_message(format!(
            "{} rows, {} rows/s, {} rejected",
            summary.rows,
            crate::metrics::per_second(summary.rows, started.elapsed()),
            summary.rejected
        ));
        Ok(())
    })?;
    bar.finish_and_clear();
    let _ = std::fs::remove_file(&options.checkpoint_path);
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Rows of the file, parsed and validated, and where the file stands after the last of them.
struct ReadBatch {
    rows: Vec<(u64, PayoutInput)>,
    valid: Vec<ValidPayout>,
    /// Rows that failed to parse or validate, with their line and external id.
    rejected: Vec<(u64, String, FieldError)>,
    malformed: u64,
    end: csv::Position,
}

struct BatchReader<'a, R> {
    reader: csv::Reader<R>,
    headers: csv::StringRecord,
    assets: &'a super::Assets,
    batch_size: usize,
}

impl<R: Read> BatchReader<'_, R> {
    /// The next batch of up to `batch_size` parsed rows, or `None` at the end of the file.
    fn next_batch(&mut self) -> anyhow::Result<Option<ReadBatch>> {
        let mut record = csv::StringRecord::new();
        let mut rows = Vec::with_capacity(self.batch_size);
        let mut rejected = Vec::new();
        let mut malformed = 0;
        while rows.len() < self.batch_size && self.reader.read_record(&mut record)? {
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            match record.deserialize::<PayoutInput>(Some(&self.headers)) {
                Ok(row) => rows.push((line, row)),
                Err(error) => {
                    malformed += 1;
                    rejected.push((
                        line,
                        String::new(),
                        FieldError::new("row", "malformed", error.to_string()),
                    ));
                }
            }
        }
        if rows.is_empty() && rejected.is_empty() {
            return Ok(None);
        }
        let now = crate::db::now();
        let mut seen = HashMap::with_capacity(rows.len());
        let mut valid = Vec::with_capacity(rows.len());
        for (index, (line, row)) in rows.iter().enumerate() {
            match validate_row(index, row, self.assets, now, &mut seen) {
                Ok(payout) => valid.push(payout),
                Err(errors) => rejected.extend(
                    errors
                        .into_iter()
                        .map(|error| (*line, row.external_id.clone(), error)),
                ),
            }
        }
        Ok(Some(ReadBatch {
            rows,
            valid,
            rejected,
            malformed,
            end: self.reader.position().clone(),
        }))
    }
}

fn write_reject(
    rejects: &mut File,
    line: u64,
    external_id: &str,
    field: &str,
    code: &str,
    message: &str,
) -> std::io::Result<()> {
    let quote = |text: &str| format!("\"{}\"", text.replace('"', "\"\""));
    writeln!(
        rejects,
        "{line},{},{},{},{}",
        quote(external_id),
        quote(field),
        quote(code),
        quote(message)
    )
}

struct BatchOutcome {
    accepted: u64,
    duplicates: u64,
    unpriced: u64,
    rejected: Vec<(u64, String, FieldError)>,
    end: csv::Position,
}

/// Writes the valid rows of one batch in one transaction; bad rows are returned, not
/// written.
fn write_batch(
    connection: &mut crate::db::DbConnection,
    batch: ReadBatch,
    options: &ImportOptions,
    actor: &Actor,
    staleness: chrono::Duration,
) -> anyhow::Result<BatchOutcome> {
    let ReadBatch {
        rows,
        valid,
        mut rejected,
        end,
        ..
    } = batch;
    let payouts = store::PayoutBatch {
        source: &options.source,
        actor,
        request_id: None,
        staleness,
    };
    let (report, left_out) = write_transaction(connection, |connection| {
        payouts.ingest(connection, valid, store::BadRows::LeaveOut)
    })
    .map_err(|error| anyhow::anyhow!(error.problem().detail))?;
    for error in left_out {
        let index = batch_index(&error.field);
        let (line, external_id) = index
            .and_then(|index| rows.get(index))
            .map(|(line, row)| (*line, row.external_id.clone()))
            .unwrap_or_default();
        rejected.push((line, external_id, error));
    }
    rejected.sort_by_key(|(line, _, _)| *line);
    Ok(BatchOutcome {
        accepted: report.accepted as u64,
        duplicates: report.duplicates as u64,
        unpriced: report.unpriced as u64,
        rejected,
        end,
    })
}

/// The row index in a field path such as `payouts[12].user_id`.
fn batch_index(field: &str) -> Option<usize> {
    field.split_once('[')?.1.split_once(']')?.0.parse().ok()
}

/// The rows of a rate CSV (header `base,quote,as_of,rate`) with their line numbers; the first
/// malformed row stops the reading, named by its line.
pub fn rate_rows<R: Read>(input: R) -> anyhow::Result<(Vec<RateInput>, Vec<u64>)> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for record in reader.deserialize::<RateInput>() {
        let line = rows.len() as u64 + 2;
        rows.push(record.with_context(|| format!("line {line}"))?);
        lines.push(line);
    }
    Ok((rows, lines))
}

/// Imports prices and FX rates from a CSV with the header `base,quote,as_of,rate`. Any bad row
/// stops the import before anything is written, naming every bad line.
pub fn import_rates(db: &Db, path: &Path, source: &str) -> anyhow::Result<(usize, usize)> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let (rows, lines) =
        rate_rows(file).map_err(|error| anyhow::anyhow!("{} {error:#}", path.display()))?;
    let mut connection = db
        .connection()
        .map_err(|e| anyhow::anyhow!(e.problem().detail))?;
    let assets = store::load_assets(&mut connection)?;
    let mut inserted = 0;
    let mut unchanged = 0;
    for (chunk_number, chunk) in rows.chunks(super::payouts::MAX_BATCH).enumerate() {
        let offset = chunk_number * super::payouts::MAX_BATCH;
        let rates = validate_rates(chunk, &assets, crate::db::now()).map_err(|errors| {
            let described: Vec<String> = errors
                .iter()
                .map(|error| {
                    let line = batch_index(&error.field)
                        .map(|i| lines[offset + i])
                        .unwrap_or(0);
                    format!("line {line}: {}: {}", error.field, error.message)
                })
                .collect();
            anyhow::anyhow!("{} has bad rows:\n{}", path.display(), described.join("\n"))
        })?;
        let actor = Actor::command_line();
        let (added, same) = write_transaction(&mut connection, |connection| {
            store::load_rates(connection, &rates, source, &actor, None)
        })
        .map_err(|error| anyhow::anyhow!(error.problem().detail))?;
        inserted += added;
        unchanged += same;
    }
    Ok((inserted, unchanged))
}
