//! `Warning` response headers (RFC 7234 `299 - "text"`, sent by the API server for deprecated
//! APIs and similar): each distinct text is logged once per client through `tracing`, as
//! client-go's deduplicating warning handler does.

use std::collections::HashSet;

use http::HeaderMap;
use parking_lot::Mutex;

/// How many distinct warnings are remembered; past that, new ones are logged every time.
const MAX_REMEMBERED: usize = 4096;

#[derive(Default)]
pub(crate) struct WarningLog {
    seen: Mutex<HashSet<String>>,
}

impl WarningLog {
    /// Logs the warnings of a response that were not logged before. Returns the texts logged.
    pub(crate) fn observe(&self, headers: &HeaderMap) -> Vec<String> {
        let mut logged = Vec::new();
        for value in headers.get_all(http::header::WARNING) {
            let Ok(value) = value.to_str() else { continue };
            let Some(text) = parse_warning(value) else { continue };
            let mut seen = self.seen.lock();
            if seen.contains(&text) {
                continue;
            }
            if seen.len() < MAX_REMEMBERED {
                seen.insert(text.clone());
            }
            drop(seen);
            tracing::warn!(warning = %text, "the API server sent a warning");
            logged.push(text);
        }
        logged
    }
}

/// Extracts the text of a `299 <agent> "<text>" ["<date>"]` warning value.
pub(crate) fn parse_warning(value: &str) -> Option<String> {
    let mut parts = value.trim().splitn(3, ' ');
    let code = parts.next()?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let _agent = parts.next()?;
    let rest = parts.next()?.trim_start();
    let mut chars = rest.strip_prefix('"')?.chars();
    let mut text = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => text.push(chars.next()?),
            '"' => return Some(text),
            c => text.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_warning_values() {
        assert_eq!(
            parse_warning(r#"299 - "policy/v1beta1 PodSecurityPolicy is deprecated""#).as_deref(),
            Some("policy/v1beta1 PodSecurityPolicy is deprecated")
        );
        assert_eq!(
            parse_warning(r#"299 - "a \"quoted\" word" "Mon, 01 Jan 2024 00:00:00 GMT""#).as_deref(),
            Some(r#"a "quoted" word"#)
        );
        assert_eq!(parse_warning("garbage"), None);
        assert_eq!(parse_warning(r#"299 - "unterminated"#), None);
    }

    #[test]
    fn logs_each_warning_once() {
        let log = WarningLog::default();
        let mut headers = HeaderMap::new();
        headers.append(http::header::WARNING, r#"299 - "one""#.parse().unwrap());
        headers.append(http::header::WARNING, r#"299 - "two""#.parse().unwrap());
        assert_eq!(log.observe(&headers), ["one", "two"]);
        assert!(log.observe(&headers).is_empty());
    }
}
