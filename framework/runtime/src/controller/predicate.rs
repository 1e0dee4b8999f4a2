//! Event filters (controller-runtime's `predicate` package): which informer events of a watch
//! lead to a reconcile. They see objects without their type ([`ObjectView`]).
//!
//! ```
//! use krust_runtime::controller::predicate::{self, Predicate};
//! // Reconcile on spec changes (generation) or label changes, but never for objects labelled
//! // `skip=true`.
//! let filter = predicate::or(predicate::GenerationChanged, predicate::LabelChanged)
//!     .and(predicate::not(predicate::label_selector("skip=true").unwrap()));
//!
//! // Objects as the informer caches them (`Cached<K>` is an `ObjectView`).
//! use k8s_openapi::api::apps::v1::Deployment;
//! use krust_runtime::cache::Cached;
//! let obj = |generation: i64, labels: &str| {
//!     let json = format!(r#"{{"metadata":{{"name":"web","generation":{generation},"labels":{{{labels}}}}}}}"#);
//!     Cached::<Deployment>::from_json(json.as_bytes()).unwrap()
//! };
//! assert!(filter.update(&obj(1, ""), &obj(2, "")), "a spec change");
//! assert!(!filter.update(&obj(2, ""), &obj(2, "")), "a status-only write");
//! assert!(filter.update(&obj(2, ""), &obj(2, r#""app":"web""#)), "a label change");
//! assert!(!filter.update(&obj(1, ""), &obj(2, r#""skip":"true""#)), "skipped");
//! ```

use std::sync::Arc;

use kube_core::Selector;

use crate::cache::ObjectView;

/// Decides whether an event passes (controller-runtime's `predicate.Predicate`). Every method
/// passes by default.
pub trait Predicate: Send + Sync + 'static {
    /// An object appeared (including the initial list).
    fn create(&self, _obj: &dyn ObjectView) -> bool {
        true
    }
    /// An object changed (or was resynced: same resourceVersion).
    fn update(&self, _old: &dyn ObjectView, _new: &dyn ObjectView) -> bool {
        true
    }
    /// An object was deleted.
    fn delete(&self, _obj: &dyn ObjectView) -> bool {
        true
    }

    /// Both this and `other`.
    fn and<P: Predicate>(self, other: P) -> And<Self, P>
    where
        Self: Sized,
    {
        And(self, other)
    }

    /// This or `other`.
    fn or<P: Predicate>(self, other: P) -> Or<Self, P>
    where
        Self: Sized,
    {
        Or(self, other)
    }
}

impl<P: Predicate + ?Sized> Predicate for Arc<P> {
    fn create(&self, obj: &dyn ObjectView) -> bool {
        (**self).create(obj)
    }
    fn update(&self, old: &dyn ObjectView, new: &dyn ObjectView) -> bool {
        (**self).update(old, new)
    }
    fn delete(&self, obj: &dyn ObjectView) -> bool {
        (**self).delete(obj)
    }
}

impl<P: Predicate + ?Sized> Predicate for Box<P> {
    fn create(&self, obj: &dyn ObjectView) -> bool {
        (**self).create(obj)
    }
    fn update(&self, old: &dyn ObjectView, new: &dyn ObjectView) -> bool {
        (**self).update(old, new)
    }
    fn delete(&self, obj: &dyn ObjectView) -> bool {
        (**self).delete(obj)
    }
}

/// Updates pass when `metadata.generation` changed (spec changes; status-only writes do not
/// bump it). Creates and deletes pass.
#[derive(Clone, Copy, Debug, Default)]
pub struct GenerationChanged;

impl Predicate for GenerationChanged {
    fn update(&self, old: &dyn ObjectView, new: &dyn ObjectView) -> bool {
        old.generation() != new.generation()
    }
}

/// Updates pass when the resourceVersion changed (filters out resyncs).
#[derive(Clone, Copy, Debug, Default)]
pub struct ResourceVersionChanged;

impl Predicate for ResourceVersionChanged {
    fn update(&self, old: &dyn ObjectView, new: &dyn ObjectView) -> bool {
        old.resource_version() != new.resource_version()
    }
}

/// Updates pass when the labels changed.
#[derive(Clone, Copy, Debug, Default)]
pub struct LabelChanged;

impl Predicate for LabelChanged {
    fn update(&self, old: &dyn ObjectView, new: &dyn ObjectView) -> bool {
        !old.labels().same_as(&new.labels())
    }
}

/// Updates pass when the annotations changed.
#[derive(Clone, Copy, Debug, Default)]
pub struct AnnotationChanged;

impl Predicate for AnnotationChanged {
    fn update(&self, old: &dyn ObjectView, new: &dyn ObjectView) -> bool {
        old.annotations() != new.annotations()
    }
}

/// Every event passes when the object's labels match the selector (for an update, the new
/// object's).
#[derive(Clone, Debug)]
pub struct LabelSelector {
    selector: Selector,
    expressions: Vec<kube_core::Expression>,
}

impl LabelSelector {
    /// The predicate of `selector`.
    pub fn new(selector: Selector) -> Self {
        let expressions = selector.clone().into_iter().collect();
        LabelSelector { selector, expressions }
    }

    /// Its selector.
    pub fn selector(&self) -> &Selector {
        &self.selector
    }
}

/// A [`LabelSelector`] from the selector syntax (`app=web,tier in (a,b),!legacy`).
pub fn label_selector(selector: &str) -> Result<LabelSelector, kube_core::ParseExpressionError> {
    Ok(LabelSelector::new(parse_selector(selector)?))
}

/// Parses the label selector syntax of `kubectl -l` and `labelSelector=`: `k=v`, `k==v`,
/// `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, joined by commas (one parser for all of
/// krust: [`krust_client::rules::parse_label_selector`]).
pub fn parse_selector(selector: &str) -> Result<Selector, kube_core::ParseExpressionError> {
    krust_client::rules::parse_label_selector(selector)
        .map_err(|e| kube_core::ParseExpressionError(format!("invalid label selector {selector:?}: {e}")))
}

impl Predicate for LabelSelector {
    fn create(&self, obj: &dyn ObjectView) -> bool {
        obj.labels().matches_all(&self.expressions)
    }
    fn update(&self, _old: &dyn ObjectView, new: &dyn ObjectView) -> bool {
        new.labels().matches_all(&self.expressions)
    }
    fn delete(&self, obj: &dyn ObjectView) -> bool {
        obj.labels().matches_all(&self.expressions)
    }
}

/// Both predicates pass.
#[derive(Clone, Debug)]
pub struct And<A, B>(pub A, pub B);

impl<A: Predicate, B: Predicate> Predicate for And<A, B> {
    fn create(&self, obj: &dyn ObjectView) -> bool {
        self.0.create(obj) && self.1.create(obj)
    }
    fn update(&self, old: &dyn ObjectView, new: &dyn ObjectView) -> bool {
        self.0.update(old, new) && self.1.update(old, new)
    }
    fn delete(&self, obj: &dyn ObjectView) -> bool {
        self.0.delete(obj) && self.1.delete(obj)
    }
}

/// Either predicate passes.
#[derive(Clone, Debug)]
pub struct Or<A, B>(pub A, pub B);

impl<A: Predicate, B: Predicate> Predicate for Or<A, B> {
    fn create(&self, obj: &dyn ObjectView) -> bool {
        self.0.create(obj) || self.1.create(obj)
    }
    fn update(&self, old: &dyn ObjectView, new: &dyn ObjectView) -> bool {
        self.0.update(old, new) || self.1.update(old, new)
    }
    fn delete(&self, obj: &dyn ObjectView) -> bool {
        self.0.delete(obj) || self.1.delete(obj)
    }
}

/// The predicate does not pass.
#[derive(Clone, Debug)]
pub struct Not<A>(pub A);

impl<A: Predicate> Predicate for Not<A> {
    fn create(&self, obj: &dyn ObjectView) -> bool {
        !self.0.create(obj)
    }
    fn update(&self, old: &dyn ObjectView, new: &dyn ObjectView) -> bool {
        !self.0.update(old, new)
    }
    fn delete(&self, obj: &dyn ObjectView) -> bool {
        !self.0.delete(obj)
    }
}

/// Both `a` and `b`.
pub fn and<A: Predicate, B: Predicate>(a: A, b: B) -> And<A, B> {
    And(a, b)
}

/// `a` or `b`.
pub fn or<A: Predicate, B: Predicate>(a: A, b: B) -> Or<A, B> {
    Or(a, b)
}

/// Not `a`.
pub fn not<A: Predicate>(a: A) -> Not<A> {
    Not(a)
}

/// A predicate from one function applied to every event's (new) object.
pub fn from_fn<F: Fn(&dyn ObjectView) -> bool + Send + Sync + 'static>(f: F) -> FromFn<F> {
    FromFn(f)
}

/// See [`from_fn`].
#[derive(Clone, Debug)]
pub struct FromFn<F>(F);

impl<F: Fn(&dyn ObjectView) -> bool + Send + Sync + 'static> Predicate for FromFn<F> {
    fn create(&self, obj: &dyn ObjectView) -> bool {
        (self.0)(obj)
    }
    fn update(&self, _old: &dyn ObjectView, new: &dyn ObjectView) -> bool {
        (self.0)(new)
    }
    fn delete(&self, obj: &dyn ObjectView) -> bool {
        (self.0)(obj)
    }
}

#[cfg(test)]
mod tests {
    use kube_core::SelectorExt;

    use super::*;
    use crate::cache::Cached;

    fn obj(json: &str) -> Cached<serde_json::Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn predicates_and_combinators() {
        let a =
            obj(r#"{"metadata":{"name":"a","generation":1,"resourceVersion":"1","labels":{"app":"web"}}}"#);
        let status_only =
            obj(r#"{"metadata":{"name":"a","generation":1,"resourceVersion":"2","labels":{"app":"web"}}}"#);
        let spec = obj(
            r#"{"metadata":{"name":"a","generation":2,"resourceVersion":"3","labels":{"app":"db"},"annotations":{"n":"1"}}}"#,
        );
        assert!(!GenerationChanged.update(&a, &status_only));
        assert!(GenerationChanged.update(&a, &spec));
        assert!(GenerationChanged.create(&a) && GenerationChanged.delete(&a));
        assert!(ResourceVersionChanged.update(&a, &status_only));
        assert!(!ResourceVersionChanged.update(&a, &a), "a resync");
        assert!(!LabelChanged.update(&a, &status_only) && LabelChanged.update(&a, &spec));
        assert!(!AnnotationChanged.update(&a, &status_only) && AnnotationChanged.update(&a, &spec));
        let web = label_selector("app=web").unwrap();
        assert!(web.create(&a) && !web.create(&spec) && !web.update(&a, &spec));
        let either = or(GenerationChanged, LabelChanged);
        assert!(!either.update(&a, &status_only) && either.update(&a, &spec));
        let both = and(GenerationChanged, not(web.clone()));
        assert!(both.update(&a, &spec) && !both.update(&status_only, &a));
        let named = from_fn(|o| o.name() == "a");
        assert!(named.create(&a));
        assert!(!GenerationChanged.or(LabelChanged).and(web).update(&status_only, &a));
        assert!(label_selector("a in (").is_err());
        let labels = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let s = parse_selector("app in (web, api),tier!=db,!legacy,team").unwrap();
        assert!(s.matches(&labels(&[("app", "api"), ("tier", "fe"), ("team", "x")])));
        assert!(!s.matches(&labels(&[("app", "api"), ("team", "x"), ("legacy", "1")])));
        assert!(!s.matches(&labels(&[("app", "db"), ("team", "x")])));
        assert!(parse_selector("a==1").unwrap().matches(&labels(&[("a", "1")])));
        assert!(parse_selector("a notin (1)").unwrap().matches(&labels(&[("a", "2")])));
        assert!(parse_selector("").unwrap().selects_all());
    }
}
