//! Small helpers for writing XML exports (CARF, goAML) with quick-xml.

use std::io::Write;

use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};

use crate::error::AppError;

pub(crate) type XmlWriter<W> = quick_xml::Writer<W>;

pub(crate) fn io(error: std::io::Error) -> AppError {
    AppError::internal(error)
}

pub(crate) fn start<W: Write>(
    writer: &mut XmlWriter<W>,
    name: &str,
    attributes: &[(&str, &str)],
) -> Result<(), AppError> {
    let element = BytesStart::new(name).with_attributes(attributes.iter().copied());
    writer.write_event(Event::Start(element)).map_err(io)
}

pub(crate) fn end<W: Write>(writer: &mut XmlWriter<W>, name: &str) -> Result<(), AppError> {
    writer
        .write_event(Event::End(BytesEnd::new(name)))
        .map_err(io)
}

pub(crate) fn leaf<W: Write>(
    writer: &mut XmlWriter<W>,
    name: &str,
    attributes: &[(&str, &str)],
    text: &str,
) -> Result<(), AppError> {
    start(writer, name, attributes)?;
    writer
        .write_event(Event::Text(BytesText::new(text)))
        .map_err(io)?;
    end(writer, name)
}

/// A person's name as tax and FIU formats want it: first and last. A name in Chinese characters
/// (no spaces) has the family name first: its first character; other names split at the last
/// space.
pub(crate) fn name_parts(legal_name: &str) -> (String, String) {
    let name = legal_name.trim();
    if let Some((first, last)) = name.rsplit_once(' ') {
        return (first.trim().to_string(), last.to_string());
    }
    let mut characters = name.chars();
    match (characters.next(), characters.as_str()) {
        (Some(family), given) if !given.is_empty() && !family.is_ascii() => {
            (given.to_string(), family.to_string())
        }
        // One word only: OECD's "no first name" marker.
        _ => ("NFN".to_string(), name.to_string()),
    }
}
