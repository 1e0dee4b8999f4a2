#!/usr/bin/env python3
"""Regenerates framework/client/src/api/clientset_table.rs from the k8s-openapi sources in the
cargo registry: every type implementing `crate::Resource` with a URL segment of its own,
grouped by group version, with client-go's method names (snake_case plurals)."""
import glob, os, re, sys

version = sys.argv[1] if len(sys.argv) > 1 else "v1_33"
roots = glob.glob(os.path.expanduser(f"~/.cargo/registry/src/*/k8s-openapi-0.29.*/src/{version}"))
if not roots:
    sys.exit(f"k8s-openapi 0.29 sources for {version} not found; run `cargo fetch` first")
base = roots[0]
rows = []
for root, _, files in os.walk(base):
    for f in files:
        if not f.endswith(".rs"):
            continue
        s = open(os.path.join(root, f)).read()
        for m in re.finditer(r"impl crate::Resource for (\w+) \{(.*?)\n\}", s, re.S):
            name, body = m.group(1), m.group(2)
            group = re.search(r"GROUP: &'static str = \"(.*?)\"", body).group(1)
            seg = re.search(r"URL_PATH_SEGMENT: &'static str = \"(.*?)\"", body).group(1)
            scope = re.search(r"type Scope = crate::(\w+)", body).group(1)
            if scope == "SubResourceScope" or not seg:
                continue
            mod = os.path.relpath(root, base).replace("/", "::")
            rows.append((group, mod.split("::")[-1], name, seg, scope, mod))

def snake(k):
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", k)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()

def plural(k):
    if k == "Endpoints":
        return "endpoints"
    s = snake(k)
    if s.endswith("y") and not s.endswith("ey"):
        return s[:-1] + "ies"
    if s.endswith(("s", "x", "ch", "sh")):
        return s + "es"
    return s + "s"

groups = {}
for g, v, name, seg, scope, mod in sorted(rows):
    prefix = "core" if g == "" else g.split(".")[0]
    groups.setdefault((f"{prefix}_{v}", g, v), []).append(
        (plural(name), name, seg, "ns" if scope == "NamespaceResourceScope" else "cluster", mod))
print(f"// Generated from k8s-openapi 0.29 ({version}): every resource type with its own URL segment.")
print("// Regenerate with scripts/gen-clientset-table.py when the Kubernetes version changes.")
print("group_versions! {")
for (acc, g, v), items in groups.items():
    struct = "".join(p.capitalize() for p in acc.split("_"))
    print(f'    {acc} => {struct}, "{g}", "{v}" {{')
    for meth, name, seg, sc, mod in items:
        print(f"        {meth}: k8s_openapi::{mod}::{name}, \"{seg}\", {sc};")
    print("    }")
print("}")
