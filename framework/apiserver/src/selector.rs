//! Label and field selectors as the API server parses them (`labels.Parse`, `fields.Parse`).
//!
//! Mirrors apimachinery's `labels` and `fields` packages (the label parser is krust-client's).

use std::collections::BTreeMap;

use krust_client::rules::parse_label_selector;
use kube_core::{Selector, SelectorExt};

use crate::object::Summary;

/// A parsed label selector (krust-client's parser, `labels.Parse`); the empty selector matches
/// everything.
#[derive(Debug, Clone, Default)]
pub(crate) struct LabelSelector(Selector);

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (f,g),h notin (i),j,!k`.
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        parse_label_selector(text).map(LabelSelector).map_err(|e| e.to_string())
    }

    pub fn is_empty(&self) -> bool {
        self.0.selects_all()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.matches(labels)
    }
}

/// A parsed field selector (`metadata.name=x,status.phase!=Running`).
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldSelector(Vec<(String, String, bool)>);

impl FieldSelector {
    /// Parses and checks the fields against what this resource supports.
    pub fn parse(text: &str, supported: &[&str]) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        if text.trim().is_empty() {
            return Ok(FieldSelector(terms));
        }
        for part in text.split(',') {
            let (field, value, equal) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, true)
            } else {
                return Err(format!("invalid selector: '{part}'; can't understand '{part}'"));
            };
            let field = field.trim();
            if !supported.contains(&field) {
                return Err(format!("field label not supported: {field}"));
            }
            terms.push((field.to_string(), value.trim().to_string(), equal));
        }
        Ok(FieldSelector(terms))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, summary: &Summary) -> bool {
        self.0.iter().all(|(field, value, equal)| {
            let actual = match field.as_str() {
                "metadata.name" => summary.name.as_str(),
                "metadata.namespace" => summary.namespace.as_str(),
                other => {
                    summary.fields.iter().find(|(f, _)| *f == other).map(|(_, v)| v.as_str()).unwrap_or("")
                }
            };
            (actual == value) == *equal
        })
    }
}

/// The selectable fields of a resource.
pub(crate) fn supported_fields(group: &str, plural: &str) -> &'static [&'static str] {
    match (group, plural) {
        ("", "pods") => &["metadata.name", "metadata.namespace", "spec.nodeName", "status.phase"],
        // kube-apiserver's event fields (kubectl describe asks for involvedObject.*); the
        // events.k8s.io names of the same fields too.
        ("" | "events.k8s.io", "events") => &[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingComponent",
            "reportingController",
            "source",
            "type",
        ],
        _ => &["metadata.name", "metadata.namespace"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn label_selector_operators() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        for (sel, expected) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("app in (web, db)", true),
            ("app in (db)", false),
            ("app notin (db)", true),
            ("missing notin (db)", true),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("app=web,tier=front", true),
            ("app=web,tier=back", false),
        ] {
            assert_eq!(LabelSelector::parse(sel).unwrap().matches(&l), expected, "{sel}");
        }
        assert!(LabelSelector::parse("app in (a").is_err());
        assert!(LabelSelector::parse("a=b,,c").is_err());
        assert!(LabelSelector::parse("bad key=x").is_err());
    }

    #[test]
    fn field_selectors() {
        let summary = Summary {
            name: "p".into(),
            namespace: "ns".into(),
            fields: vec![("spec.nodeName", "n1".into()), ("status.phase", "Running".into())],
            ..Default::default()
        };
        let pods = supported_fields("", "pods");
        assert!(
            FieldSelector::parse("metadata.name=p,status.phase=Running", pods).unwrap().matches(&summary)
        );
        assert!(!FieldSelector::parse("spec.nodeName!=n1", pods).unwrap().matches(&summary));
        assert!(FieldSelector::parse("spec.nodeName=", pods).unwrap().matches(&Summary::default()));
        let err = FieldSelector::parse("spec.nodeName=x", supported_fields("", "configmaps")).unwrap_err();
        assert_eq!(err, "field label not supported: spec.nodeName");
    }
}
