//! Kubernetes' conventions that every layer needs, written once (apimachinery's `labels.Parse`,
//! client-go's `rest` path rules): where a group's API lives, whether a type is cluster-scoped,
//! and the label selector syntax. The clients, the informer factory, the controller builder,
//! the predicates and krust-apiserver all use these.
//!
//! ```
//! use k8s_openapi::api::core::v1::{Namespace, Pod};
//! use krust_client::rules::{api_path, is_cluster_scoped, parse_label_selector};
//! use kube_core::SelectorExt;
//!
//! assert_eq!(api_path(""), "/api");
//! assert_eq!(api_path("apps"), "/apis");
//! assert!(is_cluster_scoped::<Namespace>() && !is_cluster_scoped::<Pod>());
//!
//! let selector = parse_label_selector("app=web,tier in (front,edge),!canary").unwrap();
//! let labels: std::collections::BTreeMap<String, String> =
//!     [("app", "web"), ("tier", "edge")].map(|(k, v)| (k.to_string(), v.to_string())).into();
//! assert!(selector.matches(&labels));
//! assert!(parse_label_selector("tier in (front").is_err());
//! ```

use std::collections::BTreeSet;

use kube_core::{Expression, Resource, Selector};

/// The API root of a group: `/api` for the core group (`""`), `/apis` for every other.
pub fn api_path(group: &str) -> &'static str {
    if group.is_empty() { "/api" } else { "/apis" }
}

/// Whether `K` is cluster-scoped (k8s-openapi's `ClusterResourceScope`; a derived custom
/// resource without `namespaced` is too).
pub fn is_cluster_scoped<K>() -> bool
where
    K: Resource,
    K::Scope: 'static,
{
    std::any::TypeId::of::<K::Scope>() == std::any::TypeId::of::<k8s_openapi::ClusterResourceScope>()
}

/// A label selector that does not parse, with kube-apiserver's wording of why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

/// A label key: a DNS subdomain prefix and `/` (optional), then a name of letters, digits,
/// `-`, `_` and `.`.
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 317
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

/// A label value: at most 63 letters, digits, `-`, `_` and `.` (empty allowed).
fn valid_value(value: &str) -> bool {
    value.len() <= 63 && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Splits on commas outside parentheses.
fn split_top(text: &str) -> Result<Vec<&str>, SelectorError> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(SelectorError("unbalanced parenthesis".into()));
                }
            }
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(SelectorError("unbalanced parenthesis".into()));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn parse_set(text: &str) -> Result<BTreeSet<String>, SelectorError> {
    let inner =
        text.trim().strip_prefix('(').and_then(|t| t.strip_suffix(')')).ok_or_else(|| {
            SelectorError(format!("expected a parenthesized list of values, found {text:?}"))
        })?;
    let mut set = BTreeSet::new();
    for v in inner.split(',') {
        let v = v.trim();
        if !valid_value(v) {
            return Err(SelectorError(format!("invalid label value: {v:?}")));
        }
        set.insert(v.to_string());
    }
    Ok(set)
}

/// `key <word> (..)` with whitespace around the word.
fn split_word<'a>(part: &'a str, word: &str) -> Option<(&'a str, &'a str)> {
    let mut tokens = part.splitn(2, char::is_whitespace);
    let key = tokens.next()?.trim();
    let rest = tokens.next()?.trim_start();
    let rest = rest.strip_prefix(word)?;
    if !(rest.starts_with(char::is_whitespace) || rest.starts_with('(')) {
        return None;
    }
    Some((key, rest.trim()))
}

/// Parses the label selector syntax of `kubectl -l` and `labelSelector=` (apimachinery's
/// `labels.Parse`): `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, joined by
/// commas; keys and values are checked. The empty selector selects everything.
pub fn parse_label_selector(text: &str) -> Result<Selector, SelectorError> {
    let mut expressions = Vec::new();
    if text.trim().is_empty() {
        return Ok(Selector::default());
    }
    for part in split_top(text)? {
        let part = part.trim();
        if part.is_empty() {
            return Err(SelectorError(format!("found '', expected: identifier in {text:?}")));
        }
        let expression = if let Some(key) = part.strip_prefix('!') {
            Expression::DoesNotExist(key.trim().to_string())
        } else if let Some((k, v)) = part.split_once("!=") {
            Expression::NotEqual(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            Expression::Equal(k.trim().into(), v.trim().into())
        } else if let Some((k, rest)) = split_word(part, "notin") {
            Expression::NotIn(k.into(), parse_set(rest)?)
        } else if let Some((k, rest)) = split_word(part, "in") {
            Expression::In(k.into(), parse_set(rest)?)
        } else {
            Expression::Exists(part.to_string())
        };
        let (key, value) = match &expression {
            Expression::Exists(k)
            | Expression::DoesNotExist(k)
            | Expression::In(k, _)
            | Expression::NotIn(k, _) => (k, None),
            Expression::Equal(k, v) | Expression::NotEqual(k, v) => (k, Some(v)),
        };
        if !valid_key(key) {
            return Err(SelectorError(format!("invalid label key {key:?}")));
        }
        if let Some(v) = value
            && !valid_value(v)
        {
            return Err(SelectorError(format!("invalid label value: {v:?}")));
        }
        expressions.push(expression);
    }
    Ok(expressions.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kube_core::SelectorExt;

    use super::*;

    #[test]
    fn label_selectors_parse_and_match_as_kubernetes_does() {
        let s = parse_label_selector("app in (web, api),tier!=db,!legacy,team,env==prod").unwrap();
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert!(s.matches(&labels(&[("app", "api"), ("team", "x"), ("env", "prod")])));
        assert!(!s.matches(&labels(&[("app", "api"), ("team", "x"), ("env", "prod"), ("legacy", "1")])));
        assert!(!s.matches(&labels(&[("app", "db"), ("team", "x"), ("env", "prod")])));
        assert!(parse_label_selector("").unwrap().selects_all());
        assert!(parse_label_selector("k notin(a)").unwrap().matches(&labels(&[("k", "b")])));
        for bad in ["a in (", "a,,b", "a=b c", "a=(b)", ")"] {
            assert!(parse_label_selector(bad).is_err(), "{bad:?} must not parse");
        }
        assert_eq!(api_path(""), "/api");
        assert_eq!(api_path("apps"), "/apis");
    }
}
