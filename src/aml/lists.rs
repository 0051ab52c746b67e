//! Sanctions and PEP list files: the OFAC SDN legacy CSV set, the UN consolidated XML and
//! hashgate's PEP CSV, parsed into one entry model. A malformed file is refused with its line
//! and the reason; nothing is half-loaded.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::names::SubjectKind;

/// Where a list comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ListSource {
    #[serde(rename = "ofac-sdn")]
    OfacSdn,
    #[serde(rename = "un-consolidated")]
    UnConsolidated,
    #[serde(rename = "pep")]
    Pep,
}

impl ListSource {
    pub const ALL: [ListSource; 3] = [
        ListSource::OfacSdn,
        ListSource::UnConsolidated,
        ListSource::Pep,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ListSource::OfacSdn => "ofac-sdn",
            ListSource::UnConsolidated => "un-consolidated",
            ListSource::Pep => "pep",
        }
    }

    pub fn parse(text: &str) -> Option<ListSource> {
        ListSource::ALL
            .into_iter()
            .find(|source| source.as_str() == text)
    }

    /// PEP lists are not sanctions: a hit means enhanced due diligence, not a block.
    pub fn is_sanctions(self) -> bool {
        !matches!(self, ListSource::Pep)
    }
}

/// A date of birth as lists give it: a day, a month, a year, or a range of years.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BirthDate {
    pub year: i32,
    /// Equal to `year` unless the list gives a range ("1962 to 1963", UN `BETWEEN`).
    pub year_to: i32,
    pub month: Option<u32>,
    pub day: Option<u32>,
    /// "circa" / "APPROXIMATELY": a year either side also agrees.
    pub approximate: bool,
}

impl BirthDate {
    /// Whether a known date of birth agrees with this one.
    pub fn agrees_with(&self, date: chrono::NaiveDate) -> bool {
        use chrono::Datelike;
        let slack = i32::from(self.approximate);
        if date.year() < self.year - slack || date.year() > self.year_to + slack {
            return false;
        }
        if self.year != self.year_to || self.approximate {
            return true;
        }
        self.month.is_none_or(|month| month == date.month())
            && self.day.is_none_or(|day| day == date.day())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityDocument {
    pub kind: String,
    pub number: String,
    pub country: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CryptoAddress {
    /// The list's currency code (XBT, ETH, USDT …).
    pub currency: String,
    pub address: String,
}

/// One listed person, entity, vessel or aircraft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    /// The list's own id (OFAC ent_num, UN DATAID, the PEP file's id).
    pub entry_id: String,
    pub kind: SubjectKind,
    /// The primary name first, then strong aliases.
    pub names: Vec<String>,
    /// Low-quality aliases (OFAC "weak a.k.a.", UN quality "Low"): matched, but scored down.
    pub weak_names: Vec<String>,
    pub birth_dates: Vec<BirthDate>,
    /// As written in the list ("Iran", "Russia", "Democratic Republic of the Congo").
    pub nationalities: Vec<String>,
    pub addresses: Vec<String>,
    pub documents: Vec<IdentityDocument>,
    pub crypto_addresses: Vec<CryptoAddress>,
    /// Sanctions programmes, or the PEP's position.
    pub programs: Vec<String>,
    pub remarks: Option<String>,
}

impl ListEntry {
    fn new(entry_id: String, kind: SubjectKind) -> ListEntry {
        ListEntry {
            entry_id,
            kind,
            names: Vec::new(),
            weak_names: Vec::new(),
            birth_dates: Vec::new(),
            nationalities: Vec::new(),
            addresses: Vec::new(),
            documents: Vec::new(),
            crypto_addresses: Vec::new(),
            programs: Vec::new(),
            remarks: None,
        }
    }

    /// Identifies this version of the entry: a dismissed hit stays dismissed until it changes.
    pub fn content_hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(json))
    }

    pub fn primary_name(&self) -> &str {
        self.names.first().map(String::as_str).unwrap_or("")
    }
}

/// Why a list file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListError {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}: {}", self.file, self.line, self.reason)
    }
}

impl std::error::Error for ListError {}

fn list_error(file: &str, line: u64, reason: impl Into<String>) -> ListError {
    ListError {
        file: file.to_string(),
        line,
        reason: reason.into(),
    }
}

/// SHA-256 over the files of one load, in the order given.
pub fn checksum(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

// ---------------------------------------------------------------------------------------------
// OFAC SDN, legacy CSV: sdn.csv, add.csv, alt.csv, sdn_comments.csv (no headers, `-0-` = empty).

/// The files of one OFAC load; `comments` may hold several remark files (a later list's extended
/// remarks carry crypto addresses of entries the main file does not have).
#[derive(Debug, Default)]
pub struct OfacFiles {
    pub sdn: Vec<u8>,
    pub addresses: Option<Vec<u8>>,
    pub aliases: Option<Vec<u8>>,
    pub comments: Vec<(String, Vec<u8>)>,
}

impl OfacFiles {
    pub fn checksum(&self) -> String {
        let mut parts: Vec<&[u8]> = vec![&self.sdn];
        parts.extend(self.addresses.as_deref());
        parts.extend(self.aliases.as_deref());
        parts.extend(self.comments.iter().map(|(_, bytes)| bytes.as_slice()));
        checksum(&parts)
    }
}

/// Rows of one legacy CSV file with exactly `columns` fields; the DOS end-of-file mark that
/// OFAC appends is accepted, anything else malformed is refused.
fn ofac_rows(
    file: &str,
    bytes: &[u8],
    columns: usize,
) -> Result<Vec<(u64, Vec<String>)>, ListError> {
    let text = std::str::from_utf8(bytes).map_err(|error| {
        let line = bytes[..error.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64
            + 1;
        list_error(file, line, "not UTF-8 text")
    })?;
    let complete = text.trim_end_matches('\u{1a}');
    if !complete.is_empty() && !complete.ends_with('\n') {
        let line = complete.matches('\n').count() as u64 + 1;
        return Err(list_error(
            file,
            line,
            "the file ends in the middle of a row (truncated?)",
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|error| {
            let line = error.position().map(|p| p.line()).unwrap_or(0);
            list_error(file, line, error.to_string())
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() == 1
            && record[0]
                .trim_matches(|c: char| c == '\u{1a}' || c.is_whitespace())
                .is_empty()
        {
            continue;
        }
        if record.len() != columns {
            return Err(list_error(
                file,
                line,
                format!(
                    "{} fields, expected {columns} (a truncated or corrupted file?)",
                    record.len()
                ),
            ));
        }
        let fields = record
            .iter()
            .map(|field| {
                let field = field.trim();
                if field == "-0-" {
                    String::new()
                } else {
                    field.to_string()
                }
            })
            .collect();
        rows.push((line, fields));
    }
    Ok(rows)
}

fn entry_number(file: &str, line: u64, text: &str) -> Result<String, ListError> {
    text.parse::<u64>()
        .map(|number| number.to_string())
        .map_err(|_| list_error(file, line, format!("ent_num `{text}` is not a number")))
}

pub fn parse_ofac(files: &OfacFiles) -> Result<Vec<ListEntry>, ListError> {
    let mut entries: BTreeMap<u64, ListEntry> = BTreeMap::new();
    let mut remarks: BTreeMap<u64, String> = BTreeMap::new();
    for (line, row) in ofac_rows("sdn.csv", &files.sdn, 12)? {
        let id = entry_number("sdn.csv", line, &row[0])?;
        if row[1].is_empty() {
            return Err(list_error("sdn.csv", line, "the entry has no name"));
        }
        let kind = match row[2].as_str() {
            "individual" => SubjectKind::Person,
            "vessel" => SubjectKind::Vessel,
            "aircraft" => SubjectKind::Aircraft,
            _ => SubjectKind::Entity,
        };
        let mut entry = ListEntry::new(id.clone(), kind);
        entry.names.push(row[1].clone());
        entry.programs = row[3]
            .split(']')
            .map(|program| program.trim().trim_start_matches('[').trim().to_string())
            .filter(|program| !program.is_empty())
            .collect();
        let number = id.parse().unwrap_or(0);
        remarks.insert(number, row[11].clone());
        if entries.insert(number, entry).is_some() {
            return Err(list_error(
                "sdn.csv",
                line,
                format!("ent_num {id} appears twice"),
            ));
        }
    }
    if entries.is_empty() {
        return Err(list_error("sdn.csv", 1, "no entries"));
    }
    if let Some(bytes) = &files.aliases {
        for (line, row) in ofac_rows("alt.csv", bytes, 5)? {
            let number: u64 = entry_number("alt.csv", line, &row[0])?.parse().unwrap_or(0);
            let entry = entries.get_mut(&number).ok_or_else(|| {
                list_error(
                    "alt.csv",
                    line,
                    format!("alias of unknown ent_num {number}"),
                )
            })?;
            if !row[3].is_empty() {
                entry.names.push(row[3].clone());
            }
        }
    }
    if let Some(bytes) = &files.addresses {
        for (line, row) in ofac_rows("add.csv", bytes, 6)? {
            let number: u64 = entry_number("add.csv", line, &row[0])?.parse().unwrap_or(0);
            let entry = entries.get_mut(&number).ok_or_else(|| {
                list_error(
                    "add.csv",
                    line,
                    format!("address of unknown ent_num {number}"),
                )
            })?;
            let address: Vec<&str> = [&row[2], &row[3], &row[4]]
                .into_iter()
                .map(String::as_str)
                .filter(|part| !part.is_empty())
                .collect();
            if !address.is_empty() {
                entry.addresses.push(address.join(", "));
            }
        }
    }
    // Extended remarks continue an entry's Remarks; for an entry the main file lacks they
    // stand alone, as a supplement (often crypto addresses).
    for (file, bytes) in &files.comments {
        for (line, row) in ofac_rows(file, bytes, 2)? {
            let number: u64 = entry_number(file, line, &row[0])?.parse().unwrap_or(0);
            remarks.entry(number).or_default().push_str(&row[1]);
            entries
                .entry(number)
                .or_insert_with(|| ListEntry::new(number.to_string(), SubjectKind::Entity));
        }
    }
    for (number, entry) in entries.iter_mut() {
        if let Some(text) = remarks.remove(number) {
            apply_ofac_remarks(entry, &text);
        }
    }
    Ok(entries.into_values().collect())
}

static DOCUMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?P<kind>(?:[A-Za-z][A-Za-z'\.#/ ]*?)?(?:Passport|No\.?|Number|#|ID|R\.F\.C\.|RFC|C\.U\.R\.P\.|IMO|MMSI|SSN|FEIN|Fiscal Code|D\.N\.I\.|License|Cedula|Identification))\s+(?P<number>[A-Za-z0-9][A-Za-z0-9\-/\.]*\d[A-Za-z0-9\-/\.]*)(?:\s+\((?P<country>[^)]*)\))?",
    )
    .unwrap_or_else(|error| panic!("document pattern: {error}"))
});

static WEAK_ALIAS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"a\.k\.a\.\s+'([^']+)'")
        .unwrap_or_else(|error| panic!("weak alias pattern: {error}"))
});

/// DOB, nationality, citizenship, documents, crypto addresses and weak aliases from Remarks.
fn apply_ofac_remarks(entry: &mut ListEntry, text: &str) {
    for alias in WEAK_ALIAS.captures_iter(text) {
        entry.weak_names.push(alias[1].to_string());
    }
    for item in text.split(';') {
        let item = item.trim().trim_end_matches('.').trim();
        let item = item.strip_prefix("alt. ").unwrap_or(item);
        if let Some(rest) = item.strip_prefix("Digital Currency Address - ") {
            if let Some((currency, address)) = rest.split_once(' ') {
                let address = address.trim();
                if !address.is_empty() && !address.contains(' ') {
                    entry.crypto_addresses.push(CryptoAddress {
                        currency: currency.to_string(),
                        address: address.to_string(),
                    });
                }
            }
        } else if let Some(date) = item.strip_prefix("DOB ") {
            entry.birth_dates.extend(parse_ofac_date(date));
        } else if let Some(country) = item
            .strip_prefix("nationality ")
            .or_else(|| item.strip_prefix("citizen "))
        {
            if !entry.nationalities.iter().any(|known| known == country) {
                entry.nationalities.push(country.to_string());
            }
        } else if let Some(document) = DOCUMENT.captures(item) {
            entry.documents.push(IdentityDocument {
                kind: document["kind"].trim().to_string(),
                number: document["number"].to_string(),
                country: document.name("country").map(|c| c.as_str().to_string()),
            });
        }
    }
    if !text.is_empty() {
        entry.remarks = Some(text.to_string());
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `05 Jun 1971`, `Jun 1971`, `1971`, `circa 1971`, `1962 to 1963`.
fn parse_ofac_date(text: &str) -> Option<BirthDate> {
    let (approximate, text) = match text.strip_prefix("circa ") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if let Some((from, to)) = text.split_once(" to ") {
        let year = parse_ofac_date(from)?.year;
        let year_to = parse_ofac_date(to)?.year;
        return Some(BirthDate {
            year,
            year_to,
            month: None,
            day: None,
            approximate,
        });
    }
    let parts: Vec<&str> = text.split_whitespace().collect();
    let month = |name: &str| {
        MONTHS
            .iter()
            .position(|known| *known == name)
            .and_then(|index| u32::try_from(index + 1).ok())
    };
    let (day, month, year) = match parts.as_slice() {
        [day, name, year] => (day.parse().ok(), month(name), year.parse().ok()?),
        [name, year] => (None, month(name), year.parse().ok()?),
        [year] => (None, None, year.parse().ok()?),
        _ => return None,
    };
    Some(BirthDate {
        year,
        year_to: year,
        month,
        day,
        approximate,
    })
}

// ---------------------------------------------------------------------------------------------
// UN Security Council consolidated list, XML.

/// A parsed element: its name, text and children (the list's records are small).
#[derive(Debug, Default)]
struct Element {
    name: String,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |child| child.name == name)
    }

    fn text_of(&self, name: &str) -> Option<String> {
        self.child(name)
            .map(|child| child.text.trim().to_string())
            .filter(|text| !text.is_empty())
    }
}

fn line_at(bytes: &[u8], position: u64) -> u64 {
    let end = usize::try_from(position)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    bytes[..end].iter().filter(|byte| **byte == b'\n').count() as u64 + 1
}

pub fn parse_un(bytes: &[u8]) -> Result<Vec<ListEntry>, ListError> {
    use quick_xml::events::Event;
    const FILE: &str = "UN consolidated XML";
    let mut reader = quick_xml::Reader::from_reader(bytes);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut entries = Vec::new();
    let mut saw_root = false;
    let mut closed_root = false;
    let mut buffer = Vec::new();
    loop {
        let position = reader.buffer_position();
        let event = reader
            .read_event_into(&mut buffer)
            .map_err(|error| list_error(FILE, line_at(bytes, position), error.to_string()))?;
        let at =
            |reason: String| list_error(FILE, line_at(bytes, reader.buffer_position()), reason);
        match event {
            Event::Start(start) => {
                let name = start.name().0.to_string();
                if name == "CONSOLIDATED_LIST" {
                    saw_root = true;
                }
                stack.push(Element {
                    name,
                    ..Element::default()
                });
            }
            Event::Empty(start) => {
                let name = start.name().0.to_string();
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(Element {
                        name,
                        ..Element::default()
                    });
                }
            }
            Event::Text(text) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&text.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(current) = stack.last_mut() {
                    let resolved = match reference.xml10_content().as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => reference
                            .resolve_char_ref()
                            .ok()
                            .flatten()
                            .ok_or_else(|| at(format!("unknown entity &{other};")))?,
                    };
                    current.text.push(resolved);
                }
            }
            Event::CData(data) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&data.xml10_content());
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or_else(|| at("unbalanced end tag".into()))?;
                match element.name.as_str() {
                    "INDIVIDUAL" => {
                        entries.push(un_entry(&element, SubjectKind::Person).map_err(at)?)
                    }
                    "ENTITY" => entries.push(un_entry(&element, SubjectKind::Entity).map_err(at)?),
                    "CONSOLIDATED_LIST" => closed_root = true,
                    _ => {
                        if let Some(parent) = stack.last_mut() {
                            parent.children.push(element);
                        }
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buffer.clear();
    }
    if !saw_root || !closed_root || !stack.is_empty() {
        return Err(list_error(
            FILE,
            line_at(bytes, bytes.len() as u64),
            "the document ends before </CONSOLIDATED_LIST> (truncated?)",
        ));
    }
    if entries.is_empty() {
        return Err(list_error(FILE, 1, "no INDIVIDUAL or ENTITY records"));
    }
    Ok(entries)
}

fn un_entry(element: &Element, kind: SubjectKind) -> Result<ListEntry, String> {
    let id = element
        .text_of("DATAID")
        .ok_or_else(|| format!("{} without DATAID", element.name))?;
    let mut entry = ListEntry::new(id.clone(), kind);
    let name: Vec<String> = ["FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME"]
        .into_iter()
        .filter_map(|part| element.text_of(part))
        .collect();
    if name.is_empty() {
        return Err(format!("record {id} has no name"));
    }
    entry.names.push(name.join(" "));
    if let Some(original) = element.text_of("NAME_ORIGINAL_SCRIPT") {
        entry.names.push(original);
    }
    let alias_tag = match kind {
        SubjectKind::Person => "INDIVIDUAL_ALIAS",
        _ => "ENTITY_ALIAS",
    };
    for alias in element.all(alias_tag) {
        if let Some(name) = alias.text_of("ALIAS_NAME") {
            if alias.text_of("QUALITY").as_deref() == Some("Low") {
                entry.weak_names.push(name);
            } else {
                entry.names.push(name);
            }
        }
    }
    for nationality in element.all("NATIONALITY") {
        entry
            .nationalities
            .extend(nationality.all("VALUE").filter_map(|v| {
                let text = v.text.trim();
                (!text.is_empty()).then(|| text.to_string())
            }));
    }
    for date in element.all("INDIVIDUAL_DATE_OF_BIRTH") {
        entry.birth_dates.extend(un_birth_date(date));
    }
    let address_tag = match kind {
        SubjectKind::Person => "INDIVIDUAL_ADDRESS",
        _ => "ENTITY_ADDRESS",
    };
    for address in element.all(address_tag) {
        let parts: Vec<String> = ["STREET", "CITY", "STATE_PROVINCE", "ZIP_CODE", "COUNTRY"]
            .into_iter()
            .filter_map(|part| address.text_of(part))
            .collect();
        if !parts.is_empty() {
            entry.addresses.push(parts.join(", "));
        }
    }
    for document in element.all("INDIVIDUAL_DOCUMENT") {
        if let Some(number) = document.text_of("NUMBER") {
            entry.documents.push(IdentityDocument {
                kind: document
                    .text_of("TYPE_OF_DOCUMENT")
                    .unwrap_or_else(|| "Document".into()),
                number,
                country: document
                    .text_of("ISSUING_COUNTRY")
                    .or_else(|| document.text_of("COUNTRY_OF_ISSUE")),
            });
        }
    }
    entry.programs.extend(element.text_of("UN_LIST_TYPE"));
    entry.remarks = element.text_of("COMMENTS1");
    Ok(entry)
}

fn un_birth_date(date: &Element) -> Option<BirthDate> {
    let approximate = date.text_of("TYPE_OF_DATE").as_deref() == Some("APPROXIMATELY");
    if let Some(exact) = date.text_of("DATE") {
        let parsed = chrono::NaiveDate::parse_from_str(exact.get(..10)?, "%Y-%m-%d").ok()?;
        use chrono::Datelike;
        return Some(BirthDate {
            year: parsed.year(),
            year_to: parsed.year(),
            month: Some(parsed.month()),
            day: Some(parsed.day()),
            approximate,
        });
    }
    let year = |name: &str| date.text_of(name).and_then(|y| y.parse::<i32>().ok());
    if let (Some(from), Some(to)) = (year("FROM_YEAR"), year("TO_YEAR")) {
        return Some(BirthDate {
            year: from,
            year_to: to,
            month: None,
            day: None,
            approximate,
        });
    }
    let single = year("YEAR")?;
    Some(BirthDate {
        year: single,
        year_to: single,
        month: None,
        day: None,
        approximate,
    })
}

// ---------------------------------------------------------------------------------------------
// PEP CSV: `id,name,aliases,country,position,date_of_birth` (aliases separated by `;`,
// date of birth `YYYY-MM-DD` or `YYYY`, all but id and name optional).

#[derive(Debug, Deserialize)]
struct PepRow {
    id: String,
    name: String,
    #[serde(default)]
    aliases: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    position: String,
    #[serde(default)]
    date_of_birth: String,
}

pub fn parse_pep(bytes: &[u8]) -> Result<Vec<ListEntry>, ListError> {
    const FILE: &str = "PEP CSV";
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|error| list_error(FILE, 1, error.to_string()))?
        .clone();
    for required in ["id", "name"] {
        if !headers.iter().any(|header| header == required) {
            return Err(list_error(
                FILE,
                1,
                format!("the header lacks `{required}`"),
            ));
        }
    }
    let mut entries = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for record in reader.records() {
        let record = record.map_err(|error| {
            list_error(
                FILE,
                error.position().map(|p| p.line()).unwrap_or(0),
                error.to_string(),
            )
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let row: PepRow = record
            .deserialize(Some(&headers))
            .map_err(|error| list_error(FILE, line, error.to_string()))?;
        if row.id.is_empty() || row.name.is_empty() {
            return Err(list_error(FILE, line, "id and name are required"));
        }
        if !seen.insert(row.id.clone()) {
            return Err(list_error(
                FILE,
                line,
                format!("id `{}` appears twice", row.id),
            ));
        }
        let mut entry = ListEntry::new(row.id, SubjectKind::Person);
        entry.names.push(row.name);
        entry.names.extend(
            row.aliases
                .split(';')
                .map(str::trim)
                .filter(|alias| !alias.is_empty())
                .map(String::from),
        );
        if !row.country.is_empty() {
            entry.nationalities.push(row.country);
        }
        if !row.position.is_empty() {
            entry.programs.push(row.position);
        }
        if !row.date_of_birth.is_empty() {
            let date = parse_pep_date(&row.date_of_birth).ok_or_else(|| {
                list_error(
                    FILE,
                    line,
                    format!(
                        "date_of_birth `{}` is not YYYY-MM-DD or YYYY",
                        row.date_of_birth
                    ),
                )
            })?;
            entry.birth_dates.push(date);
        }
        entries.push(entry);
    }
    if entries.is_empty() {
        return Err(list_error(FILE, 1, "no entries"));
    }
    Ok(entries)
}

fn parse_pep_date(text: &str) -> Option<BirthDate> {
    use chrono::Datelike;
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(BirthDate {
            year: date.year(),
            year_to: date.year(),
            month: Some(date.month()),
            day: Some(date.day()),
            approximate: false,
        });
    }
    let year: i32 = text
        .parse()
        .ok()
        .filter(|year| (1850..=2100).contains(year))?;
    Some(BirthDate {
        year,
        year_to: year,
        month: None,
        day: None,
        approximate: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_remarks_identifiers() {
        let mut entry = ListEntry::new("1".into(), SubjectKind::Person);
        apply_ofac_remarks(
            &mut entry,
            "DOB 05 Jun 1971; alt. DOB circa 1960; nationality Russia; Passport 123456789 (Russia); \
             Digital Currency Address - XBT 12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h; a.k.a. 'BOSS'.",
        );
        assert_eq!(entry.birth_dates.len(), 2);
        assert_eq!(entry.birth_dates[0].month, Some(6));
        assert!(entry.birth_dates[1].approximate);
        assert_eq!(entry.nationalities, vec!["Russia"]);
        assert_eq!(entry.documents[0].number, "123456789");
        assert_eq!(entry.documents[0].country.as_deref(), Some("Russia"));
        assert_eq!(entry.crypto_addresses[0].currency, "XBT");
        assert_eq!(entry.weak_names, vec!["BOSS"]);
    }

    #[test]
    fn refuses_a_cut_sdn_row() {
        let error = parse_ofac(&OfacFiles {
            sdn: b"36,\"AEROCARIBBEAN AIRLINES\",-0- ,\"CUBA\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n173,\"ANGLO-CARIB".to_vec(),
            ..OfacFiles::default()
        })
        .unwrap_err();
        assert_eq!(error.line, 2);
    }

    #[test]
    fn refuses_a_truncated_un_document() {
        let error = parse_un(b"<CONSOLIDATED_LIST><INDIVIDUALS><INDIVIDUAL><DATAID>1</DATAID>")
            .unwrap_err();
        assert!(error.reason.contains("truncated"), "{error}");
    }
}
