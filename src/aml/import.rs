//! `hashgate lists import`: read list files, parse them completely, then store the new version
//! in one transaction. A file that fails to parse changes nothing.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::lists::{self, ListEntry, ListSource, OfacFiles};
use super::store::{self, ListVersion};
use crate::audit::Actor;
use crate::db::{write_transaction, Db};

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// OFAC: directories holding `sdn.csv` and optionally `add.csv`, `alt.csv`, `sdn_comments.csv`,
/// or those files named one by one; every `*comments*.csv` adds extended remarks.
fn ofac_files(paths: &[PathBuf]) -> anyhow::Result<OfacFiles> {
    let mut files = OfacFiles::default();
    let mut sdn = None;
    let mut add_file = |path: &Path, files: &mut OfacFiles| -> anyhow::Result<()> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        match name.as_str() {
            "sdn.csv" => sdn = Some(read(path)?),
            "add.csv" => files.addresses = Some(read(path)?),
            "alt.csv" => files.aliases = Some(read(path)?),
            other if other.contains("comments") => {
                files
                    .comments
                    .push((path.display().to_string(), read(path)?));
            }
            other => anyhow::bail!(
                "{}: not an OFAC legacy CSV file name ({other})",
                path.display()
            ),
        }
        Ok(())
    };
    for path in paths {
        if path.is_dir() {
            for name in ["sdn.csv", "add.csv", "alt.csv", "sdn_comments.csv"] {
                let file = path.join(name);
                if file.exists() {
                    add_file(&file, &mut files)?;
                }
            }
        } else {
            add_file(path, &mut files)?;
        }
    }
    files.sdn = sdn.context("no sdn.csv among the given paths")?;
    Ok(files)
}

/// Reads and parses a list; returns its checksum and entries.
pub fn read_list(
    source: ListSource,
    paths: &[PathBuf],
) -> anyhow::Result<(String, Vec<ListEntry>)> {
    match source {
        ListSource::OfacSdn => {
            let files = ofac_files(paths)?;
            Ok((files.checksum(), lists::parse_ofac(&files)?))
        }
        ListSource::UnConsolidated | ListSource::Pep => {
            let [path] = paths else {
                anyhow::bail!("{} takes exactly one file", source.as_str());
            };
            let bytes = read(path)?;
            let entries = match source {
                ListSource::UnConsolidated => lists::parse_un(&bytes),
                _ => lists::parse_pep(&bytes),
            }
            .with_context(|| format!("{} refused", path.display()))?;
            Ok((lists::checksum(&[&bytes]), entries))
        }
    }
}

pub fn import_list(
    db: &Db,
    source: ListSource,
    paths: &[PathBuf],
    force: bool,
) -> anyhow::Result<ListVersion> {
    let (checksum, entries) = read_list(source, paths)?;
    let mut connection = db
        .connection()
        .map_err(|error| anyhow::anyhow!(error.problem().detail))?;
    let actor = Actor::command_line();
    write_transaction(&mut connection, |connection| {
        store::load_list(connection, source, &checksum, &entries, &actor, force)
    })
    .map_err(|error| anyhow::anyhow!(error.problem().detail))
}
