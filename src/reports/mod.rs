//! Documents made from hashgate's records: the PDF layout shared by statements and reports.

pub mod pdf;
