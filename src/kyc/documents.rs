//! Document files: accepted only as JPEG, PNG or PDF recognised by their content (never by the
//! name or the declared type), within a size limit.

use super::DocumentKind;

/// One uploaded file, checked.
#[derive(Debug, Clone)]
pub struct DocumentFile {
    pub kind: DocumentKind,
    pub file_name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// A phone photo is 2–6 MB; a scanned PDF rarely above 8.
pub const MAX_DOCUMENT_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("the file is empty")]
    Empty,
    #[error("the file has {size} bytes; the limit is {MAX_DOCUMENT_BYTES}")]
    TooLarge { size: usize },
    #[error("the content is not a JPEG, PNG or PDF file (checked by its bytes, not its name)")]
    UnsupportedContent,
    #[error("the file is cut short: its {0} end marker is missing")]
    Truncated(&'static str),
}

/// The content type of `bytes`, recognised by its signature and end marker.
pub fn sniff(bytes: &[u8]) -> Result<&'static str, DocumentError> {
    if bytes.is_empty() {
        return Err(DocumentError::Empty);
    }
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(DocumentError::TooLarge { size: bytes.len() });
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        // Some cameras pad after the end-of-image marker; look for it near the end.
        let tail = &bytes[bytes.len().saturating_sub(1024)..];
        return if tail.windows(2).any(|pair| pair == [0xFF, 0xD9]) {
            Ok("image/jpeg")
        } else {
            Err(DocumentError::Truncated("JPEG"))
        };
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let tail = &bytes[bytes.len().saturating_sub(64)..];
        return if tail.windows(4).any(|window| window == b"IEND") {
            Ok("image/png")
        } else {
            Err(DocumentError::Truncated("PNG"))
        };
    }
    if bytes.starts_with(b"%PDF-") {
        let tail = &bytes[bytes.len().saturating_sub(2048)..];
        return if tail.windows(5).any(|window| window == b"%%EOF") {
            Ok("application/pdf")
        } else {
            Err(DocumentError::Truncated("PDF"))
        };
    }
    Err(DocumentError::UnsupportedContent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_by_content_only() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0....\xFF\xD9"), Ok("image/jpeg"));
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n....IEND\xAEB`\x82"),
            Ok("image/png")
        );
        assert_eq!(sniff(b"%PDF-1.7\n...\n%%EOF\n"), Ok("application/pdf"));
        assert_eq!(sniff(b"GIF89a...."), Err(DocumentError::UnsupportedContent));
        assert_eq!(
            sniff(b"<html>%PDF-"),
            Err(DocumentError::UnsupportedContent)
        );
        assert_eq!(
            sniff(b"%PDF-1.7\n..."),
            Err(DocumentError::Truncated("PDF"))
        );
        assert_eq!(sniff(b""), Err(DocumentError::Empty));
        let large = vec![0u8; MAX_DOCUMENT_BYTES + 1];
        assert!(matches!(sniff(&large), Err(DocumentError::TooLarge { .. })));
    }
}
