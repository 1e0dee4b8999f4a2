//! Server-side printing: what `kubectl get` asks for with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`. For a custom resource the columns are
//! the CRD version's `additionalPrinterColumns` after `Name` (or `Name` and `Age` when it has
//! none); each cell is the first result of the column's JSONPath (the subset CRDs use: fields,
//! `[n]`, `[*]`, `['name']` and `[?(@.field=="value")]` filters), a `date` column as an age
//! (`5m`, `3h2m`) as kube-apiserver prints it. The common built-in kinds have kube-apiserver's
//! columns (pods, deployments, replicasets, statefulsets, services, configmaps, secrets,
//! namespaces, service accounts, events, leases, CRDs); other built-in kinds are answered as
//! plain objects and kubectl prints their names and ages itself. Rows carry the object as
//! `includeObject` says (`Metadata` by default, `Object` or `None`).

use serde_json::{Value, json};

/// Computes a built-in kind's cell from the object.
type CellFn = fn(&Value) -> Value;

/// One column of a Table: a CRD version's `additionalPrinterColumns` entry, or a built-in
/// kind's column.
#[derive(Clone, Debug)]
pub(crate) struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
    /// A built-in column computed from the object (instead of `json_path`).
    pub compute: Option<CellFn>,
}

/// The printer columns of one CRD version (`spec.versions[].additionalPrinterColumns`).
pub(crate) fn columns_of(version: &Value) -> Vec<PrinterColumn> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    version["additionalPrinterColumns"]
        .as_array()
        .map(|columns| {
            columns
                .iter()
                .map(|c| PrinterColumn {
                    name: text(&c["name"]),
                    type_: text(&c["type"]),
                    format: text(&c["format"]),
                    description: text(&c["description"]),
                    priority: c["priority"].as_i64().unwrap_or(0),
                    json_path: text(&c["jsonPath"]),
                    compute: None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the client asked for a Table first (kubectl lists Table before plain JSON).
pub(crate) fn wants_table(accept: &str) -> bool {
    accept.split(',').next().is_some_and(|first| first.contains("as=Table"))
}

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

fn effective_columns(columns: &[PrinterColumn]) -> Vec<PrinterColumn> {
    let name = PrinterColumn {
        name: "Name".into(),
        type_: "string".into(),
        format: "name".into(),
        description: NAME_DESCRIPTION.into(),
        priority: 0,
        json_path: ".metadata.name".into(),
        compute: None,
    };
    if columns.iter().any(|c| c.format == "name") {
        return columns.to_vec();
    }
    let mut all = vec![name];
    if columns.is_empty() {
        all.push(PrinterColumn {
            name: "Age".into(),
            type_: "date".into(),
            format: String::new(),
            description:
                "CreationTimestamp is a timestamp representing the server time when this object was created."
                    .into(),
            priority: 0,
            json_path: ".metadata.creationTimestamp".into(),
            compute: None,
        });
    } else {
        all.extend(columns.iter().cloned());
    }
    all
}

/// The Table of `objects` (as served), with the list's `metadata` (resourceVersion, continue).
pub(crate) fn table(columns: &[PrinterColumn], objects: &[Value], metadata: Value, include: &str) -> Value {
    let columns = effective_columns(columns);
    let definitions: Vec<Value> = columns
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority})
        })
        .collect();
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let cells: Vec<Value> = columns.iter().map(|c| cell(c, obj, now)).collect();
            let mut row = json!({"cells": cells});
            match include {
                "None" => {}
                "Object" => row["object"] = obj.clone(),
                _ => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": obj["metadata"],
                    })
                }
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

fn cell(column: &PrinterColumn, obj: &Value, now: jiff::Timestamp) -> Value {
    let computed;
    let value = match column.compute {
        Some(f) => {
            computed = f(obj);
            &computed
        }
        None => match evaluate(&column.json_path, obj).into_iter().next() {
            Some(v) => v,
            None => return Value::Null,
        },
    };
    match (column.type_.as_str(), value) {
        (_, Value::Null) => Value::Null,
        ("date", Value::String(s)) => match s.parse::<jiff::Timestamp>() {
            Ok(t) => json!(human_duration(now.as_second() - t.as_second())),
            Err(_) => json!("<invalid>"),
        },
        ("integer", v) if v.is_i64() || v.is_u64() => v.clone(),
        ("number", v) if v.is_number() => v.clone(),
        ("boolean", v) if v.is_boolean() => v.clone(),
        (_, Value::String(s)) => json!(s),
        (_, v) => json!(v.to_string()),
    }
}

/// The columns of a Table of `res`, or `None` when it is answered as plain objects.
pub(crate) fn columns_for(res: &crate::resources::ResourceDef) -> Option<Vec<PrinterColumn>> {
    if res.custom { Some(res.columns.clone()) } else { builtin(&res.group, &res.plural) }
}

fn column(name: &str, type_: &str, json_path: &str) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        type_: type_.into(),
        format: String::new(),
        description: String::new(),
        priority: 0,
        json_path: json_path.into(),
        compute: None,
    }
}

fn computed(name: &str, type_: &str, f: CellFn) -> PrinterColumn {
    PrinterColumn { compute: Some(f), ..column(name, type_, "") }
}

fn wide(mut c: PrinterColumn) -> PrinterColumn {
    c.priority = 1;
    c
}

fn age() -> PrinterColumn {
    column("Age", "date", ".metadata.creationTimestamp")
}

fn count(v: &Value) -> usize {
    match v {
        Value::Object(m) => m.len(),
        Value::Array(a) => a.len(),
        _ => 0,
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn pod_ready(p: &Value) -> Value {
    let total = count(&p["spec"]["containers"]);
    let ready = p["status"]["containerStatuses"]
        .as_array()
        .map_or(0, |s| s.iter().filter(|c| c["ready"] == Value::Bool(true)).count());
    json!(format!("{ready}/{total}"))
}

fn pod_status(p: &Value) -> Value {
    if !p["metadata"]["deletionTimestamp"].is_null() {
        return json!("Terminating");
    }
    let waiting = p["status"]["containerStatuses"]
        .as_array()
        .and_then(|s| s.iter().find_map(|c| c["state"]["waiting"]["reason"].as_str().map(str::to_string)));
    match waiting {
        Some(reason) => json!(reason),
        None => json!(p["status"]["phase"].as_str().unwrap_or("Pending")),
    }
}

fn pod_restarts(p: &Value) -> Value {
    json!(
        p["status"]["containerStatuses"]
            .as_array()
            .map_or(0, |s| s.iter().map(|c| int(&c["restartCount"])).sum::<i64>())
    )
}

fn replicas_ready(o: &Value) -> Value {
    json!(format!("{}/{}", int(&o["status"]["readyReplicas"]), int(&o["spec"]["replicas"])))
}

fn containers(o: &Value) -> Value {
    let names: Vec<&str> = o["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    json!(names.join(","))
}

fn images(o: &Value) -> Value {
    let images: Vec<&str> = o["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["image"].as_str()).collect())
        .unwrap_or_default();
    json!(images.join(","))
}

fn selector(o: &Value) -> Value {
    let labels = if o["spec"]["selector"]["matchLabels"].is_object() {
        &o["spec"]["selector"]["matchLabels"]
    } else {
        &o["spec"]["selector"]
    };
    let pairs: Vec<String> = labels
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect())
        .unwrap_or_default();
    if pairs.is_empty() { json!("<none>") } else { json!(pairs.join(",")) }
}

fn service_ports(s: &Value) -> Value {
    let ports: Vec<String> = s["spec"]["ports"]
        .as_array()
        .map(|ports| {
            ports
                .iter()
                .map(|p| {
                    let protocol = p["protocol"].as_str().unwrap_or("TCP");
                    match p["nodePort"].as_i64() {
                        Some(node) => format!("{}:{node}/{protocol}", int(&p["port"])),
                        None => format!("{}/{protocol}", int(&p["port"])),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if ports.is_empty() { json!("<none>") } else { json!(ports.join(",")) }
}

fn external_ip(s: &Value) -> Value {
    let ingress: Vec<&str> = s["status"]["loadBalancer"]["ingress"]
        .as_array()
        .map(|i| i.iter().filter_map(|i| i["ip"].as_str().or(i["hostname"].as_str())).collect())
        .unwrap_or_default();
    let external: Vec<&str> = s["spec"]["externalIPs"]
        .as_array()
        .map(|i| i.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let all: Vec<&str> = ingress.into_iter().chain(external).collect();
    match (all.is_empty(), s["spec"]["type"].as_str()) {
        (false, _) => json!(all.join(",")),
        (true, Some("LoadBalancer")) => json!("<pending>"),
        (true, _) => json!("<none>"),
    }
}

fn data_count(o: &Value) -> Value {
    json!(count(&o["data"]) + count(&o["binaryData"]))
}

/// An event in core/v1's shape (events.k8s.io/v1 events are printed as core ones, as
/// kube-apiserver converts them for its printer).
fn core_event(e: &Value) -> std::borrow::Cow<'_, Value> {
    if e["apiVersion"] == "events.k8s.io/v1" {
        std::borrow::Cow::Owned(crate::events::convert(e, true))
    } else {
        std::borrow::Cow::Borrowed(e)
    }
}

fn text(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.is_empty())
}

/// When the event was first seen: firstTimestamp, else eventTime.
fn event_first_seen(e: &Value) -> Value {
    let e = core_event(e);
    json!(text(&e["firstTimestamp"]).or(text(&e["eventTime"])).or(text(&e["metadata"]["creationTimestamp"])))
}

/// When the event was last seen: the series' last observation, lastTimestamp, else first seen.
fn event_last_seen(e: &Value) -> Value {
    let core = core_event(e);
    match text(&core["series"]["lastObservedTime"]).or(text(&core["lastTimestamp"])) {
        Some(t) => json!(t),
        None => event_first_seen(e),
    }
}

fn event_count(e: &Value) -> Value {
    let e = core_event(e);
    let count = e["series"]["count"].as_i64().or(e["count"].as_i64()).filter(|c| *c > 0).unwrap_or(1);
    json!(count)
}

fn event_object(e: &Value) -> Value {
    let e = core_event(e);
    let o = &e["involvedObject"];
    json!(format!(
        "{}/{}",
        o["kind"].as_str().unwrap_or_default().to_lowercase(),
        o["name"].as_str().unwrap_or_default()
    ))
}

/// kubectl's `formatEventSource`: component (or reporting controller), then host (or
/// reporting instance).
fn event_source(e: &Value) -> Value {
    let e = core_event(e);
    let component = text(&e["source"]["component"]).or(text(&e["reportingComponent"])).unwrap_or_default();
    match text(&e["source"]["host"]).or(text(&e["reportingInstance"])) {
        Some(instance) => json!(format!("{component}, {instance}")),
        None => json!(component),
    }
}

/// The columns of both Event APIs (kube-apiserver prints events.k8s.io/v1 ones as core/v1).
fn event_columns() -> Vec<PrinterColumn> {
    vec![
        computed("Last Seen", "date", event_last_seen),
        computed("Type", "string", |e| core_event(e)["type"].clone()),
        computed("Reason", "string", |e| core_event(e)["reason"].clone()),
        computed("Object", "string", event_object),
        wide(computed("Subobject", "string", |e| core_event(e)["involvedObject"]["fieldPath"].clone())),
        wide(computed("Source", "string", event_source)),
        computed("Message", "string", |e| core_event(e)["message"].clone()),
        wide(computed("First Seen", "date", event_first_seen)),
        wide(computed("Count", "integer", event_count)),
        wide(PrinterColumn { format: "name".into(), ..column("Name", "string", ".metadata.name") }),
    ]
}

/// kube-apiserver's columns of the common built-in kinds (the default ones and a few of `-o wide`).
fn builtin(group: &str, plural: &str) -> Option<Vec<PrinterColumn>> {
    Some(match (group, plural) {
        ("", "pods") => vec![
            computed("Ready", "string", pod_ready),
            computed("Status", "string", pod_status),
            computed("Restarts", "integer", pod_restarts),
            age(),
            wide(column("IP", "string", ".status.podIP")),
            wide(column("Node", "string", ".spec.nodeName")),
        ],
        ("apps", "deployments") => vec![
            computed("Ready", "string", replicas_ready),
            computed("Up-to-date", "integer", |o| json!(int(&o["status"]["updatedReplicas"]))),
            computed("Available", "integer", |o| json!(int(&o["status"]["availableReplicas"]))),
            age(),
            wide(computed("Containers", "string", containers)),
            wide(computed("Images", "string", images)),
            wide(computed("Selector", "string", selector)),
        ],
        ("apps", "replicasets") => vec![
            computed("Desired", "integer", |o| json!(int(&o["spec"]["replicas"]))),
            computed("Current", "integer", |o| json!(int(&o["status"]["replicas"]))),
            computed("Ready", "integer", |o| json!(int(&o["status"]["readyReplicas"]))),
            age(),
        ],
        ("apps", "statefulsets") => vec![computed("Ready", "string", replicas_ready), age()],
        ("", "services") => vec![
            computed("Type", "string", |s| json!(s["spec"]["type"].as_str().unwrap_or("ClusterIP"))),
            computed("Cluster-IP", "string", |s| json!(s["spec"]["clusterIP"].as_str().unwrap_or("<none>"))),
            computed("External-IP", "string", external_ip),
            computed("Port(s)", "string", service_ports),
            age(),
            wide(computed("Selector", "string", selector)),
        ],
        ("", "configmaps") => vec![computed("Data", "integer", data_count), age()],
        ("", "secrets") => {
            vec![column("Type", "string", ".type"), computed("Data", "integer", data_count), age()]
        }
        ("", "namespaces") => vec![column("Status", "string", ".status.phase"), age()],
        ("", "serviceaccounts") => {
            vec![computed("Secrets", "integer", |o| json!(count(&o["secrets"]))), age()]
        }
        ("", "events") | ("events.k8s.io", "events") => event_columns(),
        ("coordination.k8s.io", "leases") => vec![column("Holder", "string", ".spec.holderIdentity"), age()],
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            vec![column("Created At", "string", ".metadata.creationTimestamp")]
        }
        _ => return None,
    })
}

/// apimachinery's `duration.HumanDuration`, in seconds.
fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let s = seconds.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    let y = d / 365;
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 { format!("{m}m") } else { format!("{m}m{}s", s % 60) }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 { format!("{h}h") } else { format!("{h}h{}m", m % 60) }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 { format!("{d}d") } else { format!("{d}d{}h", h % 24) }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else if h < 24 * 365 * 8 {
        if d % 365 == 0 { format!("{y}y") } else { format!("{y}y{}d", d % 365) }
    } else {
        format!("{y}y")
    }
}

/// One step of a JSONPath.
#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    /// `[?(@.a.b=="v")]` (or `!=`).
    Filter {
        path: Vec<String>,
        value: String,
        equal: bool,
    },
}

fn parse(path: &str) -> Option<Vec<Step>> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}').trim_start_matches('$');
    let mut steps = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            if end > 0 {
                steps.push(Step::Field(after[..end].to_string()));
            }
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = closing(after)?;
            let inner = after[..end].trim();
            rest = &after[end + 1..];
            if inner == "*" {
                steps.push(Step::All);
            } else if let Ok(i) = inner.parse::<usize>() {
                steps.push(Step::Index(i));
            } else if let Some(quoted) = unquote(inner) {
                steps.push(Step::Field(quoted));
            } else {
                let filter = inner.strip_prefix("?(")?.strip_suffix(')')?.trim();
                let (lhs, rhs, equal) = match (filter.split_once("=="), filter.split_once("!=")) {
                    (Some((l, r)), _) => (l, r, true),
                    (None, Some((l, r))) => (l, r, false),
                    (None, None) => return None,
                };
                let path =
                    lhs.trim().strip_prefix('@')?.split('.').filter(|s| !s.is_empty()).map(String::from);
                let value = unquote(rhs.trim()).unwrap_or_else(|| rhs.trim().to_string());
                steps.push(Step::Filter { path: path.collect(), value, equal });
            }
        } else {
            return None;
        }
    }
    Some(steps)
}

/// The position of the `]` closing a bracket, outside quotes.
fn closing(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, ']') => return Some(i),
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    (s.len() >= 2 && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\''))))
        .then(|| s[1..s.len() - 1].to_string())
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every value `path` selects in `obj` (empty when nothing matches or the path is not understood).
fn evaluate<'a>(path: &str, obj: &'a Value) -> Vec<&'a Value> {
    let Some(steps) = parse(path) else {
        return Vec::new();
    };
    let mut current = vec![obj];
    for step in &steps {
        let mut next = Vec::new();
        for v in current {
            match step {
                Step::Field(name) => next.extend(v.get(name.as_str())),
                Step::Index(i) => next.extend(v.get(*i)),
                Step::All => match v {
                    Value::Array(items) => next.extend(items.iter()),
                    Value::Object(map) => next.extend(map.values()),
                    _ => {}
                },
                Step::Filter { path, value, equal } => {
                    for item in v.as_array().into_iter().flatten() {
                        let found = path.iter().try_fold(item, |o, key| o.get(key.as_str()));
                        let matches = found.is_some_and(|f| scalar_text(f) == *value);
                        if matches == *equal && (found.is_some() || !*equal) {
                            next.push(item);
                        }
                    }
                }
            }
        }
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_subset_of_printer_columns() {
        let obj = json!({
            "metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"replicas": 3, "ports": [{"port": 80}, {"port": 443}]},
            "status": {"conditions": [
                {"type": "Progressing", "status": "True"},
                {"type": "Ready", "status": "False"}
            ]}
        });
        let first = |p: &str| evaluate(p, &obj).into_iter().next().cloned();
        assert_eq!(first(".spec.replicas"), Some(json!(3)));
        assert_eq!(first(".spec.ports[1].port"), Some(json!(443)));
        assert_eq!(evaluate(".spec.ports[*].port", &obj), vec![&json!(80), &json!(443)]);
        assert_eq!(first(r#".status.conditions[?(@.type=="Ready")].status"#), Some(json!("False")));
        assert_eq!(first(".status.conditions[?(@.type=='Progressing')].status"), Some(json!("True")));
        assert_eq!(first(r#".status.conditions[?(@.type!="Ready")].type"#), Some(json!("Progressing")));
        assert_eq!(first(".metadata.labels['app.kubernetes.io/name']"), Some(json!("web")));
        assert_eq!(first("{.metadata.name}"), Some(json!("a")));
        assert_eq!(first(".status.missing"), None);
        assert_eq!(first(".status.conditions[?(@.type==\"Gone\")].status"), None);
        assert!(evaluate("not a path", &obj).is_empty());
    }

    #[test]
    fn ages_print_as_kube_apiserver_prints_them() {
        for (seconds, text) in [
            (5, "5s"),
            (119, "119s"),
            (150, "2m30s"),
            (600, "10m"),
            (3 * 3600 + 120, "3h2m"),
            (10 * 3600, "10h"),
            (3 * 86400 + 3600, "3d1h"),
            (40 * 86400, "40d"),
            (3 * 365 * 86400 + 86400, "3y1d"),
            (-5, "<invalid>"),
        ] {
            assert_eq!(human_duration(seconds), text, "{seconds}s");
        }
    }

    #[test]
    fn tables_have_name_then_the_crd_columns_and_metadata_objects() {
        let columns = vec![PrinterColumn {
            name: "Ready".into(),
            type_: "string".into(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            json_path: r#".status.conditions[?(@.type=="Ready")].status"#.into(),
            compute: None,
        }];
        let obj = json!({"kind": "W", "metadata": {"name": "w1", "namespace": "d"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let t = table(&columns, std::slice::from_ref(&obj), json!({"resourceVersion": "7"}), "");
        assert_eq!(t["kind"], "Table");
        let names: Vec<&str> =
            t["columnDefinitions"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Name", "Ready"]);
        assert_eq!(t["rows"][0]["cells"], json!(["w1", "True"]));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["metadata"]["resourceVersion"], "7");
        // No columns: Name and Age.
        let t = table(&[], std::slice::from_ref(&obj), json!({}), "Object");
        assert_eq!(t["columnDefinitions"][1]["name"], "Age");
        assert_eq!(t["rows"][0]["cells"][1], Value::Null);
        assert_eq!(t["rows"][0]["object"], obj);
    }

    #[test]
    fn built_in_kinds_have_kube_apiserver_columns() {
        let cells = |group: &str, plural: &str, obj: Value| -> (Vec<String>, Vec<Value>) {
            let t = table(&builtin(group, plural).unwrap(), &[obj], json!({}), "None");
            let names = t["columnDefinitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string());
            (names.collect(), t["rows"][0]["cells"].as_array().unwrap().clone())
        };
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        let (names, row) = cells("", "pods", pod);
        assert_eq!(names, ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node"]);
        assert_eq!(row[..4], [json!("p"), json!("1/2"), json!("CrashLoopBackOff"), json!(3)]);
        let service = json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort", "clusterIP": "10.0.0.1",
            "ports": [{"port": 80, "nodePort": 30080}, {"port": 53, "protocol": "UDP"}], "selector": {"app": "x"}}});
        let (_, row) = cells("", "services", service);
        assert_eq!(
            row[1..5],
            [json!("NodePort"), json!("10.0.0.1"), json!("<none>"), json!("80:30080/TCP,53/UDP")]
        );
        assert_eq!(row[6], json!("app=x"));
        let event = json!({"metadata": {"name": "e"}, "type": "Warning", "reason": "Failed", "message": "m",
            "involvedObject": {"kind": "Pod", "name": "p"}, "lastTimestamp": "2020-01-01T00:00:00Z"});
        let (names, row) = cells("", "events", event);
        assert_eq!(
            names,
            [
                "Last Seen",
                "Type",
                "Reason",
                "Object",
                "Subobject",
                "Source",
                "Message",
                "First Seen",
                "Count",
                "Name"
            ]
        );
        assert!(row[0].as_str().unwrap().contains('y'), "an age in years: {row:?}");
        assert_eq!(row[1..4], [json!("Warning"), json!("Failed"), json!("pod/p")]);
        assert_eq!(row[6], json!("m"));
        assert_eq!(row[8..], [json!(1), json!("e")]);
        // An events.k8s.io/v1 Event is printed as core/v1 prints it.
        let new = json!({"apiVersion": "events.k8s.io/v1", "metadata": {"name": "n"}, "type": "Normal",
            "reason": "Reconciled", "note": "done", "regarding": {"kind": "Deployment", "name": "web"},
            "reportingController": "example.org/website", "reportingInstance": "website-0",
            "eventTime": "2020-01-01T00:00:00.000000Z", "series": {"count": 4, "lastObservedTime": "2020-01-02T00:00:00.000000Z"}});
        let (names, row) = cells("events.k8s.io", "events", new);
        assert_eq!(names.len(), 10);
        assert_eq!(row[1..4], [json!("Normal"), json!("Reconciled"), json!("deployment/web")]);
        assert_eq!(row[5], json!("example.org/website, website-0"));
        assert_eq!(row[6], json!("done"));
        assert_eq!(row[8..], [json!(4), json!("n")]);
        assert!(builtin("", "limitranges").is_none());
    }
}
