//! Small HTML helpers: escaping and the page frame. Every value from data goes through
//! [`escape`]; the pages carry no inline script, so the content security policy forbids any.

use std::fmt::Write;

pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// Who is logged in, for the header, and the CSRF token for the logout form.
pub struct Frame<'a> {
    pub officer: Option<(&'a str, &'a str)>,
    pub csrf_token: Option<&'a str>,
}

pub fn page(title: &str, frame: &Frame, body: &str) -> String {
    let mut header = String::new();
    if let (Some((name, role)), Some(csrf)) = (frame.officer, frame.csrf_token) {
        let links = match role {
            "user" => r#"<a href="/console/me" accesskey="s">My statements</a>"#,
            "regulator" => r#"<a href="/console/reports" accesskey="r">Reports</a>"#,
            _ => {
                r#"<a href="/console/queue" accesskey="q">KYC queue</a> <a href="/console/alerts" accesskey="a">Alerts</a> <a href="/console/cases">Cases</a> <a href="/console/withdrawals" accesskey="w">Held withdrawals</a> <a href="/console/reports" accesskey="r">Reports</a>"#
            }
        };
        let _ = write!(
            header,
            r#"<nav>{links}
<span class="who">{name} · {role}</span>
<form method="post" action="/console/logout" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" class="link">Log out</button></form></nav>"#,
            name = escape(name),
            role = escape(role),
            csrf = escape(csrf),
        );
    }
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · hashgate</title>
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/console.js" defer></script>
</head>
<body>
<header><a class="brand" href="/console/queue">hashgate <small>compliance console</small></a>{header}</header>
<main>
{body}
</main>
</body>
</html>
"#,
        title = escape(title),
    )
}

/// A `<select>` with the current value selected; `options` are (value, label).
pub fn select(name: &str, options: &[(&str, &str)], current: Option<&str>) -> String {
    let mut html = format!(r#"<select name="{}" id="{}">"#, escape(name), escape(name));
    for (value, label) in options {
        let selected = if current == Some(*value) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            html,
            r#"<option value="{}"{selected}>{}</option>"#,
            escape(value),
            escape(label)
        );
    }
    html.push_str("</select>");
    html
}

pub fn format_time(time: chrono::NaiveDateTime) -> String {
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(escape("张伟 O’Brien"), "张伟 O’Brien");
    }
}
