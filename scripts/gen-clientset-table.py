#!/usr/bin/env python3
"""Regenerates framework/client/src/api/clientset_table.rs from the k8s-openapi sources in the
cargo registry: every type implementing `crate::Resource` with a URL segment of its own, in every
Kubernetes version k8s-openapi supports, grouped by group version, with client-go's method names
(snake_case plurals). What exists only in some versions is wrapped in k8s-openapi's version
macros (`k8s_if_ge_1_NN!`, `k8s_if_le_1_NN!`, `k8s_if_1_NN!`), so that the clientset compiles
with whichever version the user's project enables."""
import glob, os, re, sys

roots = glob.glob(os.path.expanduser("~/.cargo/registry/src/*/k8s-openapi-0.29.*/src"))
if not roots:
    sys.exit("k8s-openapi 0.29 sources not found; run `cargo fetch` first")
src = sorted(roots)[-1]
versions = sorted(int(d[len("v1_"):]) for d in os.listdir(src) if re.fullmatch(r"v1_\d+", d))
MIN, MAX = versions[0], versions[-1]


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


# (accessor, group, version) -> {(method, type path, segment, scope): set of minor versions}
groups = {}
for minor in versions:
    base = os.path.join(src, f"v1_{minor}")
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
                v = mod.split("::")[-1]
                prefix = "core" if group == "" else group.split(".")[0]
                key = (f"{prefix}_{v}", group, v)
                item = (plural(name), f"k8s_openapi::{mod}::{name}", seg,
                        "ns" if scope == "NamespaceResourceScope" else "cluster")
                groups.setdefault(key, {}).setdefault(item, set()).add(minor)


def gates(present):
    """The version macros whose union is exactly `present` (None: every version)."""
    present = sorted(present)
    if present == versions:
        return None
    lo, hi = present[0], present[-1]
    if present == list(range(lo, hi + 1)):
        if lo == MIN:
            return [f"k8s_if_le_1_{hi}"]
        if hi == MAX:
            return [f"k8s_if_ge_1_{lo}"]
    return [f"k8s_if_1_{v}" for v in present]


def gated(macros, lines, indent=""):
    if macros is None:
        return [indent + l for l in lines]
    out = []
    for m in macros:
        out.append(f"{indent}k8s_openapi::{m}! {{")
        out += [indent + "    " + l for l in lines]
        out.append(f"{indent}}}")
    return out


out = [
    f"// Generated from k8s-openapi 0.29 (Kubernetes 1.{MIN} to 1.{MAX}) by",
    "// scripts/gen-clientset-table.py: every resource type with its own URL segment. What exists only",
    "// in some Kubernetes versions is wrapped in k8s-openapi's version macros. Regenerate when",
    "// k8s-openapi changes.",
]
for (acc, g, v), items in sorted(groups.items()):
    struct = "".join(p.capitalize() for p in acc.split("_"))
    gv_versions = set().union(*items.values())
    gv_gate = gates(gv_versions)
    lines = [f'group_version!({acc} => {struct}, "{g}", "{v}");']
    always = [i for i, vs in sorted(items.items()) if vs == gv_versions]
    if always:
        lines.append(f"impl {struct} {{")
        lines += [f'    resource_method!({m}, {t}, "{seg}", {sc});' for (m, t, seg, sc) in always]
        lines.append("}")
    out += gated(gv_gate, lines)
    for (m, t, seg, sc), vs in sorted(items.items()):
        if vs == gv_versions:
            continue
        out += gated(gates(vs), [f"impl {struct} {{", f'    resource_method!({m}, {t}, "{seg}", {sc});', "}"])
print("\n".join(out))
