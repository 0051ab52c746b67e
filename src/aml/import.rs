//! List loads, from the command line or an upload: parse the files completely, then store the
//! new version and queue the rescreen of what it changed, in one transaction. A file that fails
//! to parse changes nothing.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::lists::{self, ListEntry, ListSource, OfacFiles};
use super::monitor::{self, RescreenScope};
use super::store::{self, ListVersion, ScreeningJob};
use crate::audit::Actor;
use crate::db::{write_transaction, Db, DbConnection};
use crate::error::AppError;
use crate::jurisdiction::Jurisdictions;

/// One file of a load: its name (which says what it is, for OFAC) and its bytes.
pub struct ListFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The OFAC legacy CSV file names a load may hold; every `*comments*.csv` adds extended remarks.
pub const OFAC_FILE_NAMES: [&str; 4] = ["sdn.csv", "add.csv", "alt.csv", "sdn_comments.csv"];

fn ofac_files(files: Vec<ListFile>) -> anyhow::Result<OfacFiles> {
    let mut ofac = OfacFiles::default();
    let mut sdn = None;
    for file in files {
        match file.name.to_lowercase().as_str() {
            "sdn.csv" => sdn = Some(file.bytes),
            "add.csv" => ofac.addresses = Some(file.bytes),
            "alt.csv" => ofac.aliases = Some(file.bytes),
            other if other.contains("comments") => ofac.comments.push((file.name, file.bytes)),
            other => anyhow::bail!(
                "{other}: not an OFAC legacy CSV file name ({})",
                OFAC_FILE_NAMES.join(", ")
            ),
        }
    }
    ofac.sdn = sdn.context("no sdn.csv among the files")?;
    Ok(ofac)
}

/// Parses a list's files; returns its checksum and entries.
pub fn parse_files(
    source: ListSource,
    files: Vec<ListFile>,
) -> anyhow::Result<(String, Vec<ListEntry>)> {
    match source {
        ListSource::OfacSdn => {
            let files = ofac_files(files)?;
            Ok((files.checksum(), lists::parse_ofac(&files)?))
        }
        ListSource::UnConsolidated | ListSource::Pep => {
            let Ok([file]) = <[ListFile; 1]>::try_from(files) else {
                anyhow::bail!("{} takes exactly one file", source.as_str());
            };
            let entries = match source {
                ListSource::UnConsolidated => lists::parse_un(&file.bytes),
                _ => lists::parse_pep(&file.bytes),
            }
            .with_context(|| format!("{} refused", file.name))?;
            Ok((lists::checksum(&[&file.bytes]), entries))
        }
    }
}

fn read(path: &Path) -> anyhow::Result<ListFile> {
    Ok(ListFile {
        name: path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        bytes: std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
    })
}

/// Reads files, or for OFAC directories holding them, and parses the list.
pub fn read_list(
    source: ListSource,
    paths: &[PathBuf],
) -> anyhow::Result<(String, Vec<ListEntry>)> {
    let mut files = Vec::new();
    for path in paths {
        if source == ListSource::OfacSdn && path.is_dir() {
            for name in OFAC_FILE_NAMES {
                let file = path.join(name);
                if file.exists() {
                    files.push(read(&file)?);
                }
            }
        } else {
            files.push(read(path)?);
        }
    }
    parse_files(source, files)
}

/// A stored load and the rescreen it queued (none when nothing changed or none was asked).
pub struct Loaded {
    pub version: ListVersion,
    pub rescreen: Option<ScreeningJob>,
}

/// Stores a parsed list and queues the rescreen of the entries it added or changed, in the
/// caller's transaction. `jurisdictions` is `None` when no rescreen is wanted.
pub fn store_list(
    connection: &mut DbConnection,
    source: ListSource,
    (checksum, entries): (&str, &[ListEntry]),
    force: bool,
    jurisdictions: Option<&Jurisdictions>,
    actor: &Actor,
) -> Result<Loaded, AppError> {
    let version = store::load_list(connection, source, checksum, entries, actor, force)?;
    let rescreen = match jurisdictions {
        Some(jurisdictions) if !version.unchanged => {
            let scope = RescreenScope::Changed {
                source,
                version: version.version,
            };
            let why = format!(
                "{} version {} changed entries",
                source.as_str(),
                version.version
            );
            Some(monitor::enqueue(
                connection,
                scope,
                jurisdictions,
                actor,
                Some(&why),
            )?)
        }
        _ => None,
    };
    Ok(Loaded { version, rescreen })
}

/// Loads the OFAC SDN (with its address supplement) and UN lists from the shared data layout
/// (`ofac/`, `ofac-addresses/`, `un/`), as the demo and the load bench use them.
pub fn load_standard_lists(db: &Db, directory: &std::path::Path) -> anyhow::Result<()> {
    let mut ofac = vec![directory.join("ofac")];
    let supplement = directory.join("ofac-addresses/sdn_comments.csv");
    if supplement.is_file() {
        ofac.push(supplement);
    }
    for (source, paths) in [
        (ListSource::OfacSdn, ofac),
        (
            ListSource::UnConsolidated,
            vec![directory.join("un/UN_consolidated.xml")],
        ),
    ] {
        import_list(db, source, &paths, false, None).with_context(|| {
            format!(
                "cannot load the {} list from {}",
                source.as_str(),
                directory.display()
            )
        })?;
    }
    Ok(())
}

/// `hashgate lists import`.
pub fn import_list(
    db: &Db,
    source: ListSource,
    paths: &[PathBuf],
    force: bool,
    jurisdictions: Option<&Jurisdictions>,
) -> anyhow::Result<Loaded> {
    let (checksum, entries) = read_list(source, paths)?;
    let mut connection = db
        .connection()
        .map_err(|error| anyhow::anyhow!(error.problem().detail))?;
    let actor = Actor::command_line();
    write_transaction(&mut connection, |connection| {
        store_list(
            connection,
            source,
            (&checksum, &entries),
            force,
            jurisdictions,
            &actor,
        )
    })
    .map_err(|error| anyhow::anyhow!(error.problem().detail))
}
