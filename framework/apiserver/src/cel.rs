//! CRD validation rules (`x-kubernetes-validations`), evaluated with the `cel` crate as
//! kube-apiserver evaluates them: `self` is the value the rule sits on, `oldSelf` its previous
//! value on updates (transition rules are skipped on create and where there is no previous
//! value, unless `optionalOldSelf`), rules on unchanged values are ratcheted (not re-checked),
//! and failures read as kube-apiserver words them (`Invalid value: "object": <message>`, or
//! `failed rule: <rule>` without a message; `reason` and `fieldPath` honoured).

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock},
};

use cel::{Context, Env, Program};
use serde_json::Value;

/// The CEL environment of validation rules: the standard library, the optional type, and the
/// strings, lists and math extensions.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    // The extensions only declare functions; failing to add one leaves rules that call it to
    // fail to compile, which reports itself.
    let _ = env.add_extension(cel::extensions::strings);
    let _ = env.add_extension(cel::extensions::lists);
    let _ = env.add_extension(cel::extensions::math);
    Arc::new(env)
});

/// One compiled rule and what goes with it.
pub(crate) struct Rule {
    source: String,
    program: Program,
    message: Option<String>,
    message_expression: Option<Program>,
    reason: String,
    field_path: String,
    /// A transition rule (it reads `oldSelf`).
    transition: bool,
    optional_old_self: bool,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule").field("rule", &self.source).finish_non_exhaustive()
    }
}

/// Compiles one CEL expression, or says why it does not compile.
fn compile(source: &str) -> Result<Program, String> {
    ENV.compile(source).map_err(|e| format!("compilation failed: {e}"))
}

/// The rules of a schema, compiled once per CRD version: rule source -> rule.
#[derive(Debug, Default)]
pub(crate) struct Rules(HashMap<String, Arc<Rule>>);

impl Rules {
    /// Compiles every rule under `schema`; the ones that do not compile are left out (the CRD
    /// was refused for them, see [`check`]).
    pub(crate) fn of(schema: &Value) -> Rules {
        let mut rules = Rules::default();
        walk(schema, &mut |node| {
            for rule in validations(node) {
                if let Some(text) = rule["rule"].as_str()
                    && !rules.0.contains_key(text)
                    && let Ok(compiled) = Rule::new(rule)
                {
                    rules.0.insert(text.to_string(), Arc::new(compiled));
                }
            }
        });
        rules
    }

    /// Whether there is any rule.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Evaluates the rules under `schema` against `value` (and `old`, on updates), appending
    /// failures as (field path, message).
    pub(crate) fn validate(
        &self,
        schema: &Value,
        value: &Value,
        old: Option<&Value>,
        path: &str,
        errors: &mut Vec<(String, String)>,
    ) {
        if value.is_null() {
            return;
        }
        for rule in validations(schema) {
            let Some(rule) = rule["rule"].as_str().and_then(|r| self.0.get(r)) else { continue };
            rule.evaluate(schema, value, old, path, errors);
        }
        match value {
            Value::Object(map) => {
                let props = schema.get("properties").and_then(Value::as_object);
                let additional = schema.get("additionalProperties").filter(|a| a.is_object());
                for (key, child) in map {
                    let Some(child_schema) = props.and_then(|p| p.get(key)).or(additional) else { continue };
                    let child_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                    let old_child = old.and_then(|o| o.get(key));
                    self.validate(child_schema, child, old_child, &child_path, errors);
                }
            }
            Value::Array(items) => {
                let Some(item_schema) = schema.get("items") else { return };
                // Old items are matched by their keys in a map list, as kube-apiserver
                // correlates them; other lists have no old items.
                let keys: Vec<&str> = schema["x-kubernetes-list-map-keys"]
                    .as_array()
                    .map(|k| k.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let map_list = schema["x-kubernetes-list-type"].as_str() == Some("map") && !keys.is_empty();
                for (i, item) in items.iter().enumerate() {
                    let old_item = if map_list {
                        old.and_then(Value::as_array).and_then(|olds| {
                            olds.iter().find(|o| keys.iter().all(|k| o.get(*k) == item.get(*k)))
                        })
                    } else {
                        None
                    };
                    self.validate(item_schema, item, old_item, &format!("{path}[{i}]"), errors);
                }
            }
            _ => {}
        }
    }
}

fn validations(schema: &Value) -> impl Iterator<Item = &Value> {
    schema.get("x-kubernetes-validations").and_then(Value::as_array).into_iter().flatten()
}

/// Calls `f` on every schema node under `schema`.
fn walk(schema: &Value, f: &mut impl FnMut(&Value)) {
    if !schema.is_object() {
        return;
    }
    f(schema);
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for child in props.values() {
            walk(child, f);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = schema.get(key) {
            walk(child, f);
        }
    }
}

/// Checks the rules of a schema node when a CRD is written: each compiles, with its
/// messageExpression (kube-apiserver's `x-kubernetes-validations[i].rule: Invalid value`).
pub(crate) fn check(node: &Value, at: &str, errors: &mut Vec<(String, String)>) {
    for (i, rule) in validations(node).enumerate() {
        let at = format!("{at}.x-kubernetes-validations[{i}]");
        match rule["rule"].as_str() {
            None | Some("") => errors.push((format!("{at}.rule"), "Required value".into())),
            Some(_) => {
                if let Err(e) = Rule::new(rule) {
                    errors.push((format!("{at}.rule"), format!("Invalid value: {}: {e}", rule["rule"])));
                }
            }
        }
        if let Some(reason) = rule["reason"].as_str()
            && !REASONS.contains(&reason)
        {
            errors.push((
                format!("{at}.reason"),
                format!(
                    "Unsupported value: \"{reason}\": supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\""
                ),
            ));
        }
    }
}

const REASONS: &[&str] =
    &["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"];

impl Rule {
    fn new(rule: &Value) -> Result<Rule, String> {
        let source = rule["rule"].as_str().unwrap_or_default().to_string();
        let program = compile(&source)?;
        let transition = program.references().has_variable("oldSelf");
        let message_expression = match rule["messageExpression"].as_str().filter(|m| !m.is_empty()) {
            Some(text) => Some(compile(text).map_err(|e| format!("messageExpression {e}"))?),
            None => None,
        };
        Ok(Rule {
            source,
            program,
            message: rule["message"].as_str().filter(|m| !m.is_empty()).map(str::to_string),
            message_expression,
            reason: rule["reason"].as_str().unwrap_or("FieldValueInvalid").to_string(),
            field_path: rule["fieldPath"].as_str().unwrap_or_default().to_string(),
            transition,
            optional_old_self: rule["optionalOldSelf"].as_bool() == Some(true),
        })
    }

    fn evaluate(
        &self,
        schema: &Value,
        value: &Value,
        old: Option<&Value>,
        path: &str,
        errors: &mut Vec<(String, String)>,
    ) {
        if self.transition && old.is_none() && !self.optional_old_self {
            return;
        }
        // Ratcheting: a value unchanged by an update is not checked again (but transition
        // rules, which are about the change, are).
        if !self.transition && old == Some(value) {
            return;
        }
        let mut context = Context::with_env(ENV.clone());
        context.add_variable_from_value("self", to_cel(value));
        if self.transition {
            let old_self = match (old, self.optional_old_self) {
                (Some(old), false) => Ok(to_cel(old)),
                (old, true) => optional(old),
                (None, false) => return,
            };
            match old_self {
                Ok(v) => context.add_variable_from_value("oldSelf", v),
                Err(e) => {
                    errors.push((
                        path.to_string(),
                        format!("Internal error: {e} evaluating rule: {}", self.source),
                    ));
                    return;
                }
            }
        }
        let type_name = schema["type"].as_str().unwrap_or(crate::crd::type_name(value));
        let failure = match self.program.execute(&context) {
            Ok(cel::Value::Bool(true)) => return,
            Ok(cel::Value::Bool(false)) => None,
            Ok(other) => Some(format!("rule returned {other:?}, not a bool")),
            Err(e) => Some(e.to_string()),
        };
        let at = format!("{path}{}", self.field_path);
        if let Some(error) = failure {
            errors.push((
                at,
                format!("Invalid value: \"{type_name}\": {error} evaluating rule: {}", self.source),
            ));
            return;
        }
        let message = self
            .message_expression
            .as_ref()
            .and_then(|m| match m.execute(&context) {
                Ok(cel::Value::String(s)) if !s.trim().is_empty() => Some(s.to_string()),
                _ => None,
            })
            .or_else(|| self.message.clone())
            .unwrap_or_else(|| format!("failed rule: {}", self.source));
        let text = match self.reason.as_str() {
            "FieldValueForbidden" => format!("Forbidden: {message}"),
            "FieldValueRequired" => format!("Required value: {message}"),
            "FieldValueDuplicate" => format!("Duplicate value: \"{type_name}\": {message}"),
            _ => format!("Invalid value: \"{type_name}\": {message}"),
        };
        errors.push((at, text));
    }
}

/// `optional.of(old)` or `optional.none()`, built by CEL itself.
fn optional(old: Option<&Value>) -> Result<cel::Value, String> {
    static OF: LazyLock<Result<Program, String>> = LazyLock::new(|| compile("optional.of(v)"));
    static NONE: LazyLock<Result<Program, String>> = LazyLock::new(|| compile("optional.none()"));
    let mut context = Context::with_env(ENV.clone());
    let program = match old {
        Some(old) => {
            context.add_variable_from_value("v", to_cel(old));
            OF.as_ref()
        }
        None => NONE.as_ref(),
    };
    program.map_err(Clone::clone)?.execute(&context).map_err(|e| e.to_string())
}

/// A JSON value as CEL sees it: integers are `int` (as the schema's `integer`), other numbers
/// `double`, objects maps with string keys.
fn to_cel(value: &Value) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(map) => {
            let entries: HashMap<cel::objects::Key, cel::Value> = map
                .iter()
                .map(|(k, v)| (cel::objects::Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            cel::Value::Map(cel::objects::Map { map: Arc::new(entries) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(schema: &Value, value: &Value, old: Option<&Value>) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        Rules::of(schema).validate(schema, value, old, "spec", &mut errors);
        errors
    }

    #[test]
    fn rules_report_as_kube_apiserver_does() {
        let schema = json!({"type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.minReplicas <= self.replicas", "message": "replicas must be at least minReplicas"},
            {"rule": "self.replicas < 100"},
            {"rule": "self.image == oldSelf.image", "message": "image is immutable", "reason": "FieldValueForbidden", "fieldPath": ".image"},
            {"rule": "size(self.name) > 2", "messageExpression": "'name ' + self.name + ' is too short'"},
        ],
        "properties": {
            "replicas": {"type": "integer"}, "minReplicas": {"type": "integer"}, "image": {"type": "string"},
            "name": {"type": "string"},
            "ports": {"type": "array", "items": {"type": "integer", "x-kubernetes-validations": [{"rule": "self > 0", "message": "must be positive"}]}},
        }});
        let good = json!({"replicas": 2, "minReplicas": 1, "image": "a", "name": "web", "ports": [80]});
        assert_eq!(run(&schema, &good, None), []);
        let bad = json!({"replicas": 200, "minReplicas": 300, "image": "a", "name": "w", "ports": [80, -1]});
        assert_eq!(
            run(&schema, &bad, None),
            [
                (
                    "spec".to_string(),
                    "Invalid value: \"object\": replicas must be at least minReplicas".to_string()
                ),
                (
                    "spec".to_string(),
                    "Invalid value: \"object\": failed rule: self.replicas < 100".to_string()
                ),
                ("spec".to_string(), "Invalid value: \"object\": name w is too short".to_string()),
                ("spec.ports[1]".to_string(), "Invalid value: \"integer\": must be positive".to_string()),
            ]
        );
        // Transition rules run on updates only.
        let changed = json!({"replicas": 2, "minReplicas": 1, "image": "b", "name": "web"});
        assert_eq!(
            run(&schema, &changed, Some(&good)),
            [("spec.image".to_string(), "Forbidden: image is immutable".to_string())]
        );
        // Ratcheting: an unchanged invalid value is not checked again; items of an atomic list
        // have no old value to compare with (kube-apiserver correlates map lists only).
        assert_eq!(
            run(&schema, &bad, Some(&bad)),
            [("spec.ports[1]".to_string(), "Invalid value: \"integer\": must be positive".to_string())]
        );
    }

    #[test]
    fn rules_that_do_not_compile_refuse_the_crd() {
        let mut errors = Vec::new();
        check(
            &json!({"x-kubernetes-validations": [{"rule": "self.a ==="}, {"rule": "true", "reason": "Nope"}]}),
            "s",
            &mut errors,
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].0 == "s.x-kubernetes-validations[0].rule" && errors[0].1.contains("compilation failed"),
            "{errors:?}"
        );
        assert_eq!(errors[1].0, "s.x-kubernetes-validations[1].reason");
    }

    #[test]
    fn optional_old_self_sees_none_on_create() {
        let schema = json!({"type": "object", "x-kubernetes-validations": [
            {"rule": "!oldSelf.hasValue() || self.v >= oldSelf.value().v", "optionalOldSelf": true, "message": "v may only grow"}]});
        assert_eq!(run(&schema, &json!({"v": 1}), None), []);
        assert_eq!(run(&schema, &json!({"v": 1}), Some(&json!({"v": 2}))).len(), 1);
        assert_eq!(run(&schema, &json!({"v": 3}), Some(&json!({"v": 2}))), []);
    }
}
