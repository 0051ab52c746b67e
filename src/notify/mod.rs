//! E-mail to users: templates per language, a durable outbox written in the same transaction as
//! the decision it reports, and a worker that delivers it over SMTP (lettre) after commit,
//! retrying with backoff while the server is down.

pub mod mailer;
pub mod outbox;
pub mod webhooks;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Template {
    subject: String,
    body: String,
}

/// template name → language → template.
type Templates = BTreeMap<String, BTreeMap<String, Template>>;

const TEMPLATES: &str = include_str!("templates.toml");

fn templates() -> &'static Templates {
    static PARSED: OnceLock<Templates> = OnceLock::new();
    PARSED.get_or_init(|| toml::from_str(TEMPLATES).unwrap_or_default())
}

/// The languages templates exist in: English, and Chinese for every `zh` tag.
pub fn template_language(preferred: &str) -> &'static str {
    if preferred == "zh" || preferred.starts_with("zh-") {
        "zh"
    } else {
        "en"
    }
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub language: &'static str,
    pub subject: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("no e-mail template `{0}`")]
    Unknown(String),
    #[error("template `{template}` uses `{{{placeholder}}}` but no value was given")]
    MissingValue {
        template: String,
        placeholder: String,
    },
}

/// Renders `template` in the user's language (English when there is no translation).
pub fn render(
    template: &str,
    preferred_language: &str,
    values: &BTreeMap<&str, String>,
) -> Result<Rendered, TemplateError> {
    let by_language = templates()
        .get(template)
        .ok_or_else(|| TemplateError::Unknown(template.to_string()))?;
    let language = template_language(preferred_language);
    let (language, chosen) = match by_language.get(language) {
        Some(found) => (language, found),
        None => (
            "en",
            by_language
                .get("en")
                .ok_or_else(|| TemplateError::Unknown(format!("{template}.en")))?,
        ),
    };
    let fill = |text: &str| fill_placeholders(template, text, values);
    Ok(Rendered {
        language,
        subject: fill(&chosen.subject)?,
        body: fill(&chosen.body)?,
    })
}

fn fill_placeholders(
    template: &str,
    text: &str,
    values: &BTreeMap<&str, String>,
) -> Result<String, TemplateError> {
    let mut output = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        output.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            output.push_str(&rest[start..]);
            return Ok(output);
        };
        let placeholder = &after[..end];
        let value = values
            .get(placeholder)
            .ok_or_else(|| TemplateError::MissingValue {
                template: template.to_string(),
                placeholder: placeholder.to_string(),
            })?;
        output.push_str(value);
        rest = &after[end + 1..];
    }
    output.push_str(rest);
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> BTreeMap<&'static str, String> {
        [
            ("name", "张伟"),
            ("tier", "2"),
            ("tier_name", "verified"),
            ("date", "2026-11-25"),
            ("application_id", "a-1"),
            ("reason", "The document was unreadable."),
            ("items", "- a selfie"),
            ("expires_on", "2026-12-31"),
            ("address", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
            ("network", "bitcoin"),
            ("usable_from", "2026-11-27 10:00 HKT"),
            ("amount", "0.2"),
            ("asset", "BTC"),
            ("withdrawal_id", "w-1"),
            ("title", "Sandbox periodic report — Hong Kong — 2026-Q3"),
            ("kind", "sandbox"),
            ("jurisdiction", "Hong Kong"),
            ("period", "2026-Q3"),
            ("report_id", "r-1"),
            ("path", "/v1/reports/r-1/files/report.pdf"),
            ("data_sha256", "0f00"),
            ("key_id", "275561c30f320125"),
        ]
        .into_iter()
        .map(|(key, value)| (key, value.to_string()))
        .collect()
    }

    #[test]
    fn every_template_renders_in_english_and_chinese() {
        assert!(!templates().is_empty(), "templates.toml does not parse");
        for (name, languages) in templates() {
            for language in ["en", "zh"] {
                assert!(languages.contains_key(language), "{name}.{language}");
                let rendered = render(name, language, &values()).unwrap();
                assert_eq!(rendered.language, language);
                assert!(!rendered.body.contains('{'), "{name}.{language}");
            }
        }
        let chinese = render("kyc_approved", "zh-Hant-HK", &values()).unwrap();
        assert!(chinese.body.contains("张伟，您好"), "{}", chinese.body);
        let fallback = render("kyc_approved", "de-CH", &values()).unwrap();
        assert_eq!(fallback.language, "en");
    }

    #[test]
    fn a_missing_value_is_an_error() {
        let mut partial = values();
        partial.remove("name");
        assert_eq!(
            render("kyc_approved", "en", &partial),
            Err(TemplateError::MissingValue {
                template: "kyc_approved".into(),
                placeholder: "name".into()
            })
        );
    }
}
