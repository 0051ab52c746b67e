//! A small page layout over printpdf: text that wraps, tables that break across pages and
//! repeat their header, and a footer with "page n of N" added once the pages are counted. One
//! embedded font (Noto Sans CJK SC, subset on save) serves Latin and Chinese text alike.

use std::sync::OnceLock;

use printpdf::{
    Color, FontId, Greyscale, Line, LinePoint, Mm, Op, ParsedFont, PdfDocument, PdfFontHandle,
    PdfPage, PdfSaveOptions, Point, Pt, TextItem,
};

use crate::error::AppError;

const FONT_BYTES: &[u8] = include_bytes!("../../reports/fonts/NotoSansCJKsc-Regular-subset.otf");

/// The font, parsed once: parsing is most of the cost of a document.
fn font() -> Option<&'static ParsedFont> {
    static FONT: OnceLock<Option<ParsedFont>> = OnceLock::new();
    FONT.get_or_init(|| ParsedFont::from_bytes(FONT_BYTES, 0, &mut Vec::new()))
        .as_ref()
}

const PAGE_WIDTH: f32 = 210.0;
const PAGE_HEIGHT: f32 = 297.0;
const MARGIN: f32 = 16.0;
/// Where the body starts below the running header, and stops above the footer.
const BODY_TOP: f32 = PAGE_HEIGHT - MARGIN - 10.0;
const BODY_BOTTOM: f32 = MARGIN + 12.0;
const PT_TO_MM: f32 = 0.352_778;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table column: its header, width in millimetres and alignment.
#[derive(Debug, Clone)]
pub struct Column {
    pub header: String,
    pub width: f32,
    pub align: Align,
}

impl Column {
    pub fn left(header: impl Into<String>, width: f32) -> Column {
        Column {
            header: header.into(),
            width,
            align: Align::Left,
        }
    }

    pub fn right(header: impl Into<String>, width: f32) -> Column {
        Column {
            header: header.into(),
            width,
            align: Align::Right,
        }
    }
}

/// The document's metadata, set from the data so that the same data gives the same document.
pub struct Metadata {
    pub title: String,
    pub subject: String,
    pub author: String,
    /// The identifier, e.g. the SHA-256 of the data.
    pub identifier: String,
    /// Unix seconds: the document's creation and modification date.
    pub dated: i64,
    pub language: String,
}

/// A document being laid out, top to bottom.
pub struct Layout {
    font: &'static ParsedFont,
    font_id: FontId,
    document: PdfDocument,
    pages: Vec<Vec<Op>>,
    /// The cursor, in millimetres from the bottom of the page.
    y: f32,
}

impl Layout {
    pub fn new(title: &str) -> Result<Layout, AppError> {
        let font = font().ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("the embedded font does not parse"))
        })?;
        let mut document = PdfDocument::new(title);
        let font_id = document.add_font(font);
        Ok(Layout {
            font,
            font_id,
            document,
            pages: vec![Vec::new()],
            y: BODY_TOP,
        })
    }

    /// The width of `text` at `size` points, in millimetres.
    pub fn text_width(&self, text: &str, size: f32) -> f32 {
        let units = f32::from(self.font.font_metrics.units_per_em.max(1));
        let advance: u32 = text
            .chars()
            .map(|character| {
                self.font
                    .lookup_glyph_index(character as u32)
                    .map(|glyph| u32::from(self.font.get_horizontal_advance(glyph)))
                    .unwrap_or(0)
            })
            .sum();
        advance as f32 / units * size * PT_TO_MM
    }

    fn page(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn text_ops(&self, x: f32, y: f32, size: f32, text: &str) -> [Op; 5] {
        [
            Op::StartTextSection,
            Op::SetTextCursor {
                pos: Point::new(Mm(x), Mm(y)),
            },
            Op::SetFont {
                font: PdfFontHandle::External(self.font_id.clone()),
                size: Pt(size),
            },
            Op::ShowText {
                items: vec![TextItem::Text(text.to_string())],
            },
            Op::EndTextSection,
        ]
    }

    /// Places text with its baseline at `y` on the current page.
    fn put(&mut self, x: f32, y: f32, size: f32, text: &str) {
        let ops = self.text_ops(x, y, size, text);
        self.page().extend(ops);
    }

    fn rule(&mut self, y: f32, from: f32, to: f32, grey: f32) {
        let line = Line {
            points: vec![
                LinePoint {
                    p: Point::new(Mm(from), Mm(y)),
                    bezier: false,
                },
                LinePoint {
                    p: Point::new(Mm(to), Mm(y)),
                    bezier: false,
                },
            ],
            is_closed: false,
        };
        self.page().extend([
            Op::SaveGraphicsState,
            Op::SetOutlineColor {
                col: Color::Greyscale(Greyscale {
                    percent: grey,
                    icc_profile: None,
                }),
            },
            Op::SetOutlineThickness { pt: Pt(0.5) },
            Op::DrawLine { line },
            Op::RestoreGraphicsState,
        ]);
    }

    pub fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = BODY_TOP;
    }

    /// Starts a new page unless `height` millimetres still fit on this one.
    pub fn ensure(&mut self, height: f32) {
        if self.y - height < BODY_BOTTOM {
            self.new_page();
        }
    }

    pub fn space(&mut self, height: f32) {
        self.y -= height;
    }

    /// Splits `text` into lines no wider than `width` millimetres (at spaces where it can;
    /// Chinese text has none and breaks between characters).
    pub fn wrap(&self, text: &str, size: f32, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let mut line = String::new();
            for word in paragraph.split_inclusive(' ') {
                let candidate = format!("{line}{word}");
                if self.text_width(candidate.trim_end(), size) <= width {
                    line = candidate;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(line.trim_end().to_string());
                    line.clear();
                }
                for character in word.chars() {
                    line.push(character);
                    if self.text_width(line.trim_end(), size) > width {
                        line.pop();
                        lines.push(line.trim_end().to_string());
                        line = character.to_string();
                    }
                }
            }
            lines.push(line.trim_end().to_string());
        }
        lines
    }

    /// A paragraph across the body's width.
    pub fn paragraph(&mut self, text: &str, size: f32) {
        let line_height = size * PT_TO_MM * 1.45;
        for line in self.wrap(text, size, PAGE_WIDTH - 2.0 * MARGIN) {
            self.ensure(line_height);
            self.y -= line_height;
            self.put(MARGIN, self.y, size, &line);
        }
    }

    /// A section heading; it never ends a page: the heading, a table's header and two of its
    /// rows must fit below it, or it moves to the next page.
    pub fn heading(&mut self, text: &str) {
        self.ensure(30.0);
        self.y -= 4.0;
        self.paragraph(text, 12.5);
        self.y -= 1.0;
        self.rule(self.y, MARGIN, PAGE_WIDTH - MARGIN, 0.6);
        self.y -= 2.0;
    }

    /// Label–value pairs in two columns.
    pub fn pairs(&mut self, pairs: &[(String, String)], size: f32) {
        let line_height = size * PT_TO_MM * 1.5;
        let label_width = 62.0;
        for (label, value) in pairs {
            let lines = self.wrap(value, size, PAGE_WIDTH - 2.0 * MARGIN - label_width);
            self.ensure(line_height * lines.len() as f32);
            self.y -= line_height;
            self.put(MARGIN, self.y, size, label);
            for (index, line) in lines.iter().enumerate() {
                if index > 0 {
                    self.y -= line_height;
                }
                self.put(MARGIN + label_width, self.y, size, line);
            }
        }
    }

    fn table_row(&mut self, columns: &[Column], cells: &[String], size: f32) {
        let mut x = MARGIN;
        for (column, cell) in columns.iter().zip(cells) {
            let padding = 1.2;
            let mut text = cell.clone();
            // A cell never spills into its neighbour: cut it to the column.
            while text.chars().count() > 1 && self.text_width(&text, size) > column.width - padding
            {
                text.pop();
            }
            let left = match column.align {
                Align::Left => x,
                Align::Right => x + column.width - padding - self.text_width(&text, size),
            };
            self.put(left, self.y, size, &text);
            x += column.width;
        }
    }

    fn table_header(&mut self, columns: &[Column], size: f32, line_height: f32) {
        let cells: Vec<String> = columns.iter().map(|column| column.header.clone()).collect();
        self.y -= line_height;
        self.table_row(columns, &cells, size);
        let width: f32 = columns.iter().map(|column| column.width).sum();
        self.rule(self.y - 1.3, MARGIN, MARGIN + width, 0.4);
        self.y -= 1.0;
    }

    /// A table whose rows break across pages; the header repeats on each page. An empty table
    /// says so in a row of its own.
    pub fn table(&mut self, columns: &[Column], rows: &[Vec<String>], size: f32, empty: &str) {
        let line_height = size * PT_TO_MM * 1.6;
        self.ensure(line_height * 3.0);
        self.table_header(columns, size, line_height);
        if rows.is_empty() {
            self.y -= line_height;
            self.put(MARGIN, self.y, size, empty);
        }
        for row in rows {
            if self.y - line_height < BODY_BOTTOM {
                self.new_page();
                self.table_header(columns, size, line_height);
            }
            self.y -= line_height;
            self.table_row(columns, row, size);
        }
        self.y -= 2.0;
    }

    /// Adds the running header and the footer to every page, then saves.
    pub fn finish(
        mut self,
        metadata: Metadata,
        header: &str,
        footer: impl Fn(usize, usize) -> Vec<String>,
    ) -> Vec<u8> {
        let total = self.pages.len();
        let mut pages = Vec::with_capacity(total);
        for (index, mut ops) in std::mem::take(&mut self.pages).into_iter().enumerate() {
            ops.extend(self.text_ops(MARGIN, PAGE_HEIGHT - MARGIN, 8.0, header));
            let mut y = MARGIN + 4.0;
            for line in footer(index + 1, total) {
                ops.extend(self.text_ops(MARGIN, y, 7.0, &line));
                y -= 3.6;
            }
            pages.push(PdfPage::new(Mm(PAGE_WIDTH), Mm(PAGE_HEIGHT), ops));
        }
        let info = &mut self.document.metadata.info;
        info.document_title = metadata.title;
        info.subject = metadata.subject;
        info.author = metadata.author.clone();
        info.creator = format!("hashgate {}", env!("CARGO_PKG_VERSION"));
        info.producer = "hashgate (printpdf)".into();
        info.identifier = metadata.identifier;
        info.keywords = vec![metadata.language];
        if let Ok(date) = printpdf::OffsetDateTime::from_unix_timestamp(metadata.dated) {
            info.creation_date = date;
            info.modification_date = date;
            info.metadata_date = date;
        }
        let mut warnings = Vec::new();
        self.document
            .with_pages(pages)
            .save(&PdfSaveOptions::default(), &mut warnings)
    }
}
