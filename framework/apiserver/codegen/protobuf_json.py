#!/usr/bin/env python3
"""Generates framework/apiserver/src/protobuf/generated.rs: a `ToJson` impl for every message of
k8s-pb that the kinds krust-apiserver serves reach, plus the (apiVersion, kind) -> decoder table.

JSON field names come from k8s-openapi (the same Kubernetes types, with serde names), falling
back to lowerCamelCase. Run it after bumping k8s-pb or k8s-openapi:

    python3 framework/apiserver/codegen/protobuf_json.py \
        ~/.cargo/registry/src/*/k8s-pb-0.9.0 ~/.cargo/registry/src/*/k8s-openapi-0.29.0
    cargo fmt --all
"""
import json
import os
import shutil
import re
import sys

PB, OPENAPI = sys.argv[1], sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))
RESOURCES = os.path.join(HERE, "..", "src", "resources.rs")
OUT_DIR = os.path.join(HERE, "..", "src", "protobuf", "generated")

# Messages with a JSON form of their own, written by hand in protobuf/json.rs.
SPECIAL = {
    "apimachinery::pkg::apis::meta::v1::Time",
    "apimachinery::pkg::apis::meta::v1::MicroTime",
    "apimachinery::pkg::apis::meta::v1::Duration",
    "apimachinery::pkg::apis::meta::v1::FieldsV1",
    "apimachinery::pkg::apis::meta::v1::Verbs",
    "apimachinery::pkg::util::intstr::IntOrString",
    "apimachinery::pkg::api::resource::Quantity",
    "apimachinery::pkg::runtime::RawExtension",
    "apiextensions_apiserver::pkg::apis::apiextensions::v1::Json",
    "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaPropsOrArray",
    "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaPropsOrBool",
    "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaPropsOrStringArray",
    "api::authentication::v1::ExtraValue",
    "api::authorization::v1::ExtraValue",
}

RUST_KEYWORDS = {"type", "ref", "continue", "override", "enum", "struct", "match", "loop", "as",
                 "in", "mod", "fn", "impl", "trait", "use", "where", "static", "const", "self"}

# Fields whose JSON names are not their protobuf names.
RENAMED = {("JsonSchemaProps", "ref"): "$ref", ("JsonSchemaProps", "schema"): "$schema"}

# Messages embedded inline in their Go type (besides every `localObjectReference`).
INLINE = {
    ("RuleWithOperations", "rule"), ("EphemeralContainer", "ephemeral_container_common"),
    ("Probe", "handler"), ("Volume", "volume_source"),
    ("PersistentVolumeSpec", "persistent_volume_source"),
}

# Fields that are pointers in the Go types, where a zero value is a value and not "unset"
# (Go's protobuf encoder writes every non-pointer field, zero or not, and its JSON encoder
# leaves zero non-pointer fields out; pointer fields are written only when set).
KEEP_ZERO = {
    # Pointers.
    "replicas", "runAsUser", "runAsGroup", "fsGroup", "terminationGracePeriodSeconds",
    "activeDeadlineSeconds", "backoffLimit", "backoffLimitPerIndex", "maxFailedIndexes",
    "parallelism", "completions", "revisionHistoryLimit", "progressDeadlineSeconds",
    "successfulJobsHistoryLimit", "failedJobsHistoryLimit", "ttlSecondsAfterFinished",
    "startingDeadlineSeconds", "automountServiceAccountToken", "enableServiceLinks",
    "runAsNonRoot", "privileged", "allowPrivilegeEscalation", "readOnlyRootFilesystem",
    "suspend", "optional", "storageClassName", "hostUsers", "shareProcessNamespace",
    "setHostnameAsFQDN", "allocateLoadBalancerNodePorts", "defaultMode", "mode", "immutable",
    "expirationSeconds", "priority", "leaseDurationSeconds", "leaseTransitions", "partition",
    "started", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems",
    "minProperties", "maxProperties", "multipleOf", "controller", "blockOwnerDeletion",
    "manualSelector",
    # Required (no omitempty): Go writes them even when zero.
    "value", "containerPort", "port", "ready", "restartCount", "allowed", "served", "storage",
    "weight", "seconds",
}


def read_json_names():
    """(struct name, snake field) -> json name, and snake -> json over all types."""
    versions = sorted(d for d in os.listdir(os.path.join(OPENAPI, "src")) if d.startswith("v1_"))
    root = os.path.join(OPENAPI, "src", versions[-1])
    per_type, anywhere, known = {}, {}, set()
    pat = re.compile(r'"([^"]+)" => Field::Key_(\w+),')
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            text = open(os.path.join(dirpath, f)).read()
            m = re.search(r"pub struct (\w+) \{", text)
            if not m:
                continue
            known.add(m.group(1).lower())
            ORIGINAL.setdefault(m.group(1).lower(), m.group(1))
            for json_name, snake in pat.findall(text):
                per_type[(m.group(1).lower(), norm(snake))] = json_name
                anywhere.setdefault(snake, json_name)
    return per_type, anywhere, known


def norm(snake):
    """k8s-pb and k8s-openapi split initialisms differently (`u_id`/`uid`, `type`/`type_`)."""
    return snake.replace("_", "").lower()


def camel(snake):
    head, *rest = snake.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


DOCS = {}
# k8s-openapi's spelling of a type name (JSONSchemaProps, not JsonSchemaProps), by lowercase.
ORIGINAL = {}
SCHEMAS_OUT = os.path.join(HERE, "..", "src", "openapi", "builtin.json")

# The messages with a JSON form of their own, as OpenAPI schemas.
SPECIAL_SCHEMAS = {
    "Time": {"type": "string", "format": "date-time",
             "description": "A timestamp in RFC 3339 form, to the second."},
    "MicroTime": {"type": "string", "format": "date-time",
                  "description": "A timestamp in RFC 3339 form, to the microsecond."},
    "Duration": {"type": "string", "description": "A duration as Go prints one (1h2m3s)."},
    "FieldsV1": {"type": "object", "description": "The set of fields a manager owns, as JSON."},
    "Verbs": {"type": "array", "items": {"type": "string"}},
    "IntOrString": {"type": "string", "format": "int-or-string",
                    "description": "An integer or a string (a number or a percentage, say)."},
    "Quantity": {"type": "string", "description": "A fixed-point number with a suffix (500m, 1Gi)."},
    "RawExtension": {"type": "object", "description": "An embedded object, as JSON."},
    "JSON": {"description": "Any JSON value."},
    "JSONSchemaPropsOrArray": {"description": "A schema, or an array of schemas."},
    "JSONSchemaPropsOrBool": {"description": "A schema, or a boolean."},
    "JSONSchemaPropsOrStringArray": {"description": "A schema, or an array of strings."},
    "ExtraValue": {"type": "array", "items": {"type": "string"}},
}


def description(lines):
    """A doc comment as Kubernetes' OpenAPI describes it: markers (`+optional`) dropped, the
    links prost-build wraps in <> unwrapped, paragraphs kept."""
    if "---" in lines:
        # Go doc comments put notes for the developers of the type after a `---` line.
        lines = lines[: lines.index("---")]
    kept = [re.sub(r"<(https?://[^>]+)>", r"\1", l) for l in lines if not l.startswith("+")]
    text = "\n".join(kept).strip()
    return re.sub(r"(?<!\n)\n(?!\n)", " ", text)


MARKERS = {}


def markers(lines):
    """The OpenAPI extensions of a field's markers (+patchMergeKey, +patchStrategy, +listType,
    +listMapKey), which kubectl reads to compute strategic merge patches."""
    out = {}
    for line in lines:
        m = re.match(r"\+(patchMergeKey|patchStrategy|listType|listMapKey|mapType)=(\S+)$", line)
        if not m:
            continue
        key, value = m.groups()
        if key == "patchMergeKey":
            out["x-kubernetes-patch-merge-key"] = value
        elif key == "patchStrategy":
            out["x-kubernetes-patch-strategy"] = value
        elif key == "listType":
            out["x-kubernetes-list-type"] = value
        elif key == "mapType":
            out["x-kubernetes-map-type"] = value
        else:
            out.setdefault("x-kubernetes-list-map-keys", []).append(value)
    return out


def parse_pb():
    """module path -> {struct: [(attr, field, type)]}."""
    modules = {}
    src = os.path.join(PB, "src")
    for dirpath, _, files in os.walk(src):
        if "mod.rs" not in files:
            continue
        rel = os.path.relpath(dirpath, src)
        if rel == "." or rel.startswith("metrics"):
            continue
        module = rel.replace(os.sep, "::")
        lines = open(os.path.join(dirpath, "mod.rs")).read().split("\n")
        structs, current, i, doc = {}, None, 0, []
        while i < len(lines):
            line = lines[i].strip()
            m = re.match(r"pub struct (\w+) \{(\})?$", line)
            if line.startswith("///"):
                doc.append(line[3:].strip())
            elif line.startswith("#[derive") or line.startswith("#[doc"):
                pass
            elif m:
                structs[m.group(1)] = []
                DOCS[(module, m.group(1))] = description(doc)
                current = None if m.group(2) else m.group(1)
                doc = []
            elif line == "}" and current:
                current = None
                doc = []
            elif current and line.startswith("#[prost("):
                attr = line[len("#[prost("):-2]
                i += 1
                decl = lines[i].strip()
                while not decl.endswith(",") or decl.count("<") != decl.count(">"):
                    i += 1
                    decl = decl + " " + lines[i].strip()
                m = re.match(r"pub (?:r#)?(\w+):\s*(.*),$", decl)
                structs[current].append((attr, m.group(1), m.group(2), description(doc)))
                MARKERS[(module, current, m.group(1))] = markers(doc)
                doc = []
            else:
                doc = []
            i += 1
        if structs:
            modules[module] = structs
    return modules


def resolve(module, ty):
    """The k8s-pb path of the message a field's type names (None for scalars)."""
    inner = re.sub(r",\s*>", ">", re.sub(r"\s+", " ", ty)).replace("< ", "<").replace(" >", ">")
    for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<", "::prost::alloc::boxed::Box<"):
        if inner.startswith(wrapper):
            inner = inner[len(wrapper):-1]
    if inner.startswith("::prost::alloc::collections::BTreeMap<"):
        inner = inner.split(",", 1)[1].strip()[:-1]
    if inner.startswith("::") or inner in ("i32", "i64", "bool", "f64", "u8"):
        return None
    parts = inner.split("::")
    base = module.split("::")
    while parts and parts[0] == "super":
        parts.pop(0)
        base.pop()
    if parts and parts[0] == "crate":
        parts.pop(0)
        base = []
    return "::".join(base + parts)


def k8s_name(path):
    """Kubernetes' OpenAPI name of a k8s-pb message: io.k8s.api.apps.v1.Deployment."""
    module, name = path.rsplit("::", 1)
    name = ORIGINAL.get(name.lower(), name)
    top, rest = module.split("::", 1)
    top = {"api": "io.k8s.api", "apimachinery": "io.k8s.apimachinery",
           "apiextensions_apiserver": "io.k8s.apiextensions-apiserver"}[top]
    return f"{top}.{rest.replace('::', '.')}.{name}"


API_VERSION_DOC = ("APIVersion defines the versioned schema of this representation of an object. "
                   "Servers should convert recognized schemas to the latest internal value, and may "
                   "reject unrecognized values.")
KIND_DOC = ("Kind is a string value representing the REST resource this object represents. "
            "Servers may infer this from the endpoint the client submits requests to. In CamelCase.")

SCALARS = {
    "string": {"type": "string"}, "int32": {"type": "integer", "format": "int32"},
    "int64": {"type": "integer", "format": "int64"}, "bool": {"type": "boolean"},
    "double": {"type": "number", "format": "double"}, "bytes": {"type": "string", "format": "byte"},
}


def scalar_or_ref(kind, module, ty):
    kind = kind.strip().strip('"')
    if kind.startswith("bytes"):
        kind = "bytes"
    if kind == "message":
        return {"$ref": "#/components/schemas/" + k8s_name(resolve(module, ty))}
    return dict(SCALARS[kind])


def write_schemas(reached, roots, by_path, per_type, anywhere, known):
    def properties(path):
        module, name = path.rsplit("::", 1)
        props = {}
        for attr, field, ty, doc in by_path[path]:
            if (name, field) in INLINE or field == "local_object_reference":
                props.update(properties(resolve(module, ty)))
                continue
            json_name = RENAMED.get((name, field)) or per_type.get((name.lower(), norm(field))) \
                or anywhere.get(field) or camel(field)
            m = re.match(r'btree_map = "string, (\w+)"', attr)
            if m:
                schema = {"type": "object", "additionalProperties": scalar_or_ref(m.group(1), module, ty)}
            else:
                base = scalar_or_ref(attr.split(",")[0], module, ty)
                if ", repeated," in attr:
                    schema = {"type": "array", "items": base}
                elif "$ref" in base:
                    schema = {"allOf": [base]}
                else:
                    schema = base
            if doc:
                schema["description"] = doc
            schema.update(MARKERS.get((module, name, field), {}))
            props[json_name] = schema
        return props

    schemas = {}
    gvks = {path: (api_version, kind) for (api_version, kind), path in roots.items()}
    for path in sorted(reached):
        module, name = path.rsplit("::", 1)
        schema = {"type": "object", "properties": properties(path)}
        if path in gvks:
            schema["properties"]["apiVersion"] = {"type": "string", "description": API_VERSION_DOC}
            schema["properties"]["kind"] = {"type": "string", "description": KIND_DOC}
        if DOCS.get((module, name)):
            schema["description"] = DOCS[(module, name)]
        if path in gvks:
            api_version, kind = gvks[path]
            group, version = api_version.rsplit("/", 1) if "/" in api_version else ("", api_version)
            schema["x-kubernetes-group-version-kind"] = [{"group": group, "kind": kind, "version": version}]
        schemas[k8s_name(path)] = schema
    for path in SPECIAL:
        special = {k.lower(): v for k, v in SPECIAL_SCHEMAS.items()}
        schemas[k8s_name(path)] = special[path.rsplit("::", 1)[1].lower()]
    os.makedirs(os.path.dirname(SCHEMAS_OUT), exist_ok=True)
    with open(SCHEMAS_OUT, "w") as f:
        json.dump(schemas, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")
    print(f"{len(schemas)} schemas -> {SCHEMAS_OUT}")


GROUP_DOCS = {
    "meta": "apimachinery (metadata, selectors, options)",
    "core": "core/v1 objects other than pods' (Services, Events, Nodes, Namespaces, ...)",
    "core_pods": "core/v1 pod (scheduling, status, security context, ...)",
    "core_containers": "core/v1 container (ports, env, probes, lifecycle, ...)",
    "core_volumes": "core/v1 volume and persistent volume claim",
    "apiextensions": "apiextensions.k8s.io/v1 (CustomResourceDefinition)",
}


def reach(starts, by_path, within):
    """The messages of `within` reachable from `starts`."""
    seen, todo = set(), list(starts)
    while todo:
        path = todo.pop()
        if path in seen or path not in within:
            continue
        seen.add(path)
        module = path.rsplit("::", 1)[0]
        for _, _, ty, _ in by_path[path]:
            target = resolve(module, ty)
            if target:
                todo.append(target)
    return seen


def file_groups(reached, by_path):
    """The generated file of each message: its API group; core/v1 by concept."""
    core = {p for p in reached if p.startswith("api::core::v1::")}
    volumes = reach(["api::core::v1::Volume", "api::core::v1::PersistentVolumeClaim"], by_path, core)
    containers = reach(["api::core::v1::Container", "api::core::v1::EphemeralContainer"], by_path, core) - volumes
    pods = reach(["api::core::v1::Pod", "api::core::v1::PodTemplateSpec"], by_path, core) - volumes - containers
    groups = {}
    for path in reached:
        top, rest = path.split("::", 1)
        if path in volumes:
            groups[path] = "core_volumes"
        elif path in containers:
            groups[path] = "core_containers"
        elif path in pods:
            groups[path] = "core_pods"
        elif top == "api":
            groups[path] = rest.split("::")[0]
        elif top == "apimachinery":
            groups[path] = "meta"
        else:
            groups[path] = "apiextensions"
    return groups


def main():
    per_type, anywhere, known = read_json_names()
    modules = parse_pb()
    by_path = {f"{m}::{s}": fields for m, structs in modules.items() for s, fields in structs.items()}
    resources = open(RESOURCES).read()
    served = re.findall(r'\bb\(\s*"([^"]*)",\s*"([^"]*)",\s*"([^"]*)"', resources)
    served += [("authentication.k8s.io", "v1", "TokenRequest"), ("autoscaling", "v1", "Scale"),
               ("policy", "v1", "Eviction")]
    # (apiVersion, kind) -> k8s-pb path, from the modules' Resource impls and names.
    roots = {}
    for (group, version, kind) in served:
        api_version = f"{group}/{version}" if group else version
        candidates = [p for p in by_path if p.endswith(f"::{version}::{kind}") and
                      (p.startswith("api::") or p.startswith("apiextensions_apiserver::"))]
        short = group.split(".")[0] if group else "core"
        if short == "apiextensions":
            candidates = [p for p in candidates if p.startswith("apiextensions_apiserver::")]
        else:
            candidates = [p for p in candidates if p.split("::")[1] == short]
        if len(candidates) != 1:
            sys.exit(f"no single k8s-pb message for {api_version} {kind}: {candidates}")
        roots[(api_version, kind)] = candidates[0]
    # The messages they reach.
    reached, todo = set(), list(roots.values())
    while todo:
        path = todo.pop()
        if path in reached or path in SPECIAL:
            continue
        reached.add(path)
        module = path.rsplit("::", 1)[0]
        for attr, _, ty, _ in by_path[path]:
            target = resolve(module, ty)
            if target:
                if target not in by_path and target not in SPECIAL:
                    sys.exit(f"{path}: cannot resolve {ty}")
                todo.append(target)
    header = [
        "// @generated by framework/apiserver/codegen/protobuf_json.py from k8s-pb's messages and",
        "// k8s-openapi's JSON field names. Do not edit by hand.",
        "",
    ]
    files = {}
    groups = file_groups(reached, by_path)
    for path in sorted(reached):
        name = path.rsplit("::", 1)[1]
        out = files.setdefault(groups[path], [])
        out.append(f"impl ToJson for pb::{path} {{")
        out.append("    fn to_json(&self) -> Result<Value, String> {")
        fields = by_path[path]
        if not fields:
            out.append("        Ok(Value::Object(Default::default()))")
        else:
            out.append("        let mut f = Fields::default();")
            for attr, field, ty, _ in fields:
                rust = f"r#{field}" if field in RUST_KEYWORDS else field
                if (name, field) in INLINE or field == "local_object_reference":
                    # Embedded inline in the Go type (`json:",inline"`): its fields are the
                    # object's own in JSON.
                    out.append(f"        f.inline(&self.{rust})?;")
                    continue
                json_name = RENAMED.get((name, field)) or per_type.get((name.lower(), norm(field)))
                if not json_name:
                    json_name = anywhere.get(field) or camel(field)
                    if name.lower() in known:
                        print(f"note: {path}.{field} not in k8s-openapi; named {json_name}")
                method = "keep" if json_name in KEEP_ZERO else "put"
                out.append(f'        f.{method}("{json_name}", &self.{rust})?;')
            out.append("        Ok(f.into_value())")
        out.append("    }")
        out.append("}")
    shutil.rmtree(OUT_DIR, ignore_errors=True)
    os.makedirs(OUT_DIR)
    for group, body in files.items():
        doc = [f"//! `ToJson` of the {GROUP_DOCS.get(group, group + ' API group')} messages.", ""]
        uses = ["use crate::protobuf::json::{Fields, ToJson};", "use k8s_pb as pb;", "use serde_json::Value;", ""]
        with open(os.path.join(OUT_DIR, f"{group}.rs"), "w") as f:
            f.write("\n".join(doc + header + uses + body) + "\n")
    out = [
        "//! The JSON of Kubernetes' protobuf messages: a `ToJson` per message the served kinds",
        "//! reach (one file per API group; core/v1 by what the messages describe), and the",
        "//! decoder of each served kind.",
        "",
    ] + header
    out += [f"mod {group};" for group in sorted(files)]
    out += [
        "",
        "use super::json::ToJson;",
        "use k8s_pb as pb;",
        "use prost::Message;",
        "use serde_json::Value;",
        "",
        "/// Decodes the message of `(apiVersion, kind)` into its JSON object; `None` for a kind",
        "/// this server does not serve.",
        "pub(super) fn decode(api_version: &str, kind: &str, raw: &[u8]) -> Option<Result<Value, String>> {",
        "    fn json<M: Message + Default + ToJson>(raw: &[u8]) -> Result<Value, String> {",
        "        M::decode(raw).map_err(|e| e.to_string())?.to_json()",
        "    }",
        "    Some(match (api_version, kind) {",
    ]
    for (api_version, kind), path in sorted(roots.items()):
        out.append(f'        ("{api_version}", "{kind}") => json::<pb::{path}>(raw),')
    out += ["        _ => return None,", "    })", "}", ""]
    with open(os.path.join(OUT_DIR, "mod.rs"), "w") as f:
        f.write("\n".join(out))
    print(f"{len(reached)} messages, {len(roots)} kinds -> {OUT_DIR} ({len(files)} files)")
    write_schemas(reached, roots, by_path, per_type, anywhere, known)


main()
