//! Status conditions for custom resources: [`Condition`] has the shape of `metav1.Condition`
//! (derive `JsonSchema` on a status that holds `Vec<Condition>` and the CRD gets its schema), and
//! [`set_condition`] / [`find_condition`] / [`is_condition_true`] behave as apimachinery's
//! `meta.SetStatusCondition`, `FindStatusCondition` and `IsStatusConditionTrue`.
//!
//! ```
//! use krust::status::{Condition, find_condition, is_condition_true, set_condition};
//!
//! let mut conditions = Vec::new();
//! assert!(set_condition(&mut conditions, Condition::new("Ready", false, "Pending", "waiting").observed(Some(1))));
//! let since = find_condition(&conditions, "Ready").unwrap().last_transition_time.clone();
//! // Same status: the message changes, the transition time does not.
//! assert!(set_condition(&mut conditions, Condition::new("Ready", false, "Pending", "still waiting")));
//! assert_eq!(find_condition(&conditions, "Ready").unwrap().last_transition_time, since);
//! // Nothing new: reported unchanged, so the status need not be written.
//! assert!(!set_condition(&mut conditions, Condition::new("Ready", false, "Pending", "still waiting")));
//! assert!(set_condition(&mut conditions, Condition::new("Ready", true, "Reconciled", "done")));
//! assert!(is_condition_true(&conditions, "Ready") && conditions.len() == 1);
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One status condition (`metav1.Condition`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The condition's type, in UpperCamelCase (`Ready`, `Available`).
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Why the condition is in this state, in one UpperCamelCase word.
    pub reason: String,
    /// Why, in a sentence for people.
    pub message: String,
    /// The `metadata.generation` the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
}

impl Condition {
    /// A condition of `type_` with `status` (`true`: `True`, `false`: `False`), its reason and
    /// message; [`set_condition`] fills the transition time.
    pub fn new(type_: &str, status: bool, reason: &str, message: impl Into<String>) -> Self {
        Condition {
            type_: type_.to_string(),
            status: if status { "True" } else { "False" }.to_string(),
            reason: reason.to_string(),
            message: message.into(),
            ..Default::default()
        }
    }

    /// The same condition, about `generation` (`metadata.generation` of the object).
    #[must_use]
    pub fn observed(mut self, generation: Option<i64>) -> Self {
        self.observed_generation = generation;
        self
    }
}

fn now() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    now.round(k8s_openapi::jiff::Unit::Second).unwrap_or(now).to_string()
}

/// Sets `condition` in `conditions` (apimachinery's `SetStatusCondition`): a new type is
/// appended; an existing one takes the new status, reason, message and observed generation. The
/// transition time changes only when the status does (to the condition's own time if it has
/// one, else now). Returns whether anything changed, so that the status is written only then.
pub fn set_condition(conditions: &mut Vec<Condition>, mut condition: Condition) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        None => {
            if condition.last_transition_time.is_empty() {
                condition.last_transition_time = now();
            }
            conditions.push(condition);
            true
        }
        Some(existing) => {
            let mut changed = false;
            if existing.status != condition.status {
                existing.status = condition.status;
                existing.last_transition_time = if condition.last_transition_time.is_empty() {
                    now()
                } else {
                    condition.last_transition_time
                };
                changed = true;
            }
            if existing.reason != condition.reason {
                existing.reason = condition.reason;
                changed = true;
            }
            if existing.message != condition.message {
                existing.message = condition.message;
                changed = true;
            }
            if existing.observed_generation != condition.observed_generation {
                existing.observed_generation = condition.observed_generation;
                changed = true;
            }
            changed
        }
    }
}

/// The condition of `type_`, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of `type_` is present with status `True`.
pub fn is_condition_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_condition_keeps_the_transition_time_unless_the_status_changes() {
        let mut conditions = Vec::new();
        assert!(set_condition(
            &mut conditions,
            Condition::new("Ready", false, "Starting", "wait").observed(Some(1))
        ));
        let first = conditions[0].last_transition_time.clone();
        assert!(!first.is_empty());
        // Same status, same everything: nothing changes.
        assert!(!set_condition(
            &mut conditions,
            Condition::new("Ready", false, "Starting", "wait").observed(Some(1))
        ));
        // Same status, new message and generation: changed, transition time kept.
        let mut stamped = Condition::new("Ready", false, "Starting", "still waiting").observed(Some(2));
        stamped.last_transition_time = "2000-01-01T00:00:00Z".into();
        assert!(set_condition(&mut conditions, stamped));
        assert_eq!(conditions[0].last_transition_time, first);
        assert_eq!(
            (conditions[0].message.as_str(), conditions[0].observed_generation),
            ("still waiting", Some(2))
        );
        // A new status: the condition's own time is taken.
        let mut ready = Condition::new("Ready", true, "Reconciled", "done").observed(Some(2));
        ready.last_transition_time = "2030-01-01T00:00:00Z".into();
        assert!(set_condition(&mut conditions, ready));
        assert_eq!(conditions[0].last_transition_time, "2030-01-01T00:00:00Z");
        assert!(is_condition_true(&conditions, "Ready"));
        // Another type is appended.
        assert!(set_condition(&mut conditions, Condition::new("Degraded", false, "AllGood", "")));
        assert_eq!(conditions.len(), 2);
        assert!(!is_condition_true(&conditions, "Degraded"));
        assert!(find_condition(&conditions, "Missing").is_none());
    }
}
