#!/usr/bin/env python3
"""Lints and renders a Helm chart with the real Helm v4 SDK (helm-python-sdk), validates the
rendered manifests offline against the Kubernetes schemas (kubernetes-validate, strict), checks
that bad values are rejected by values.schema.json, and writes the manifests for kubectl.

Usage: check_chart.py CHART_DIR OUT_DIR
Writes OUT_DIR/default.yaml (default values), OUT_DIR/full.yaml (every optional feature on,
webhooks and secure metrics with cert-manager certificates, two watched namespaces) and
OUT_DIR/secret.yaml (webhooks and secure metrics with provided Secrets), and prints one line per check. Exits non-zero on the first failure, saying what failed.
"""
import json
import os
import sys

import helm_python as helm
import kubernetes_validate
import yaml

KUBE_VERSION = "1.33.0"
FULL = {
    "metrics": {"secure": True, "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "watchNamespaces": ["team-a", "team-b"],
    "tracing": {"otlpEndpoint": "http://otel-collector.monitoring:4318"},
    "networkPolicy": {
        "enabled": True,
        "metricsFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
    },
    "podAnnotations": {"example.org/note": "full"},
    "imagePullSecrets": [{"name": "registry"}],
    "args": ["--verbose"],
    "priorityClassName": "system-cluster-critical",
    "webhook": {"enabled": True, "namespaceSelector": {"matchLabels": {"webhooks": "on"}}},
}
# "LS0t" is base64 of "---": any non-empty base64 text stands for a CA here.
SECRET = {
    "webhook": {"enabled": True, "failurePolicy": "Ignore", "certificate": {"source": "secret", "secretName": "my-webhook-tls", "caBundle": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="}},
    "metrics": {"secure": True, "certificate": {"source": "secret", "secretName": "my-metrics-tls"}},
}
# Kinds that are not Kubernetes types: no schema to check them against.
NOT_KUBERNETES = ("monitoring.coreos.com/", "cert-manager.io/")


def fail(message):
    print(f"FAIL {message}")
    sys.exit(1)


def documents(rendered):
    docs = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append((path, doc))
    return docs


def main():
    chart_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    report = helm.lint(chart_dir, strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2] + report.get("errors", [])
    if problems:
        fail(f"helm lint --strict: {json.dumps(problems)}")
    print(f"ok helm lint --strict ({len(report.get('messages', []))} messages, none a warning or error)")

    chart = helm.Chart.load(chart_dir)
    crds = list(chart.crds)
    for name, values in (("default", None), ("full", FULL), ("secret", SECRET)):
        rendered = chart.render(values, name="demo", namespace="operators", is_install=True)
        docs = documents(rendered)
        kinds = sorted({d["kind"] for _, d in docs})
        for path, doc in docs:
            if doc["apiVersion"].startswith(NOT_KUBERNETES):
                continue
            try:
                kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
            except kubernetes_validate.ValidationError as e:
                fail(f"{name}: {path} {doc['kind']}: {e.message}")
        with open(os.path.join(out_dir, f"{name}.yaml"), "w") as f:
            f.write("\n---\n".join(yaml.safe_dump(d, sort_keys=False) for _, d in docs))
        print(f"ok render {name}: {len(docs)} objects ({', '.join(kinds)}), valid against Kubernetes {KUBE_VERSION}")
    with open(os.path.join(out_dir, "crds.yaml"), "w") as f:
        f.write("\n---\n".join(c.get("data", c.get("content", "")) if isinstance(c, dict) else str(c) for c in crds))
    print(f"ok crds: {len(crds)}")

    try:
        chart.render({"webhook": {"enabled": True, "certificate": {"source": "secret"}}}, name="demo", namespace="operators", is_install=True)
        fail("webhooks with a provided Secret but no caBundle rendered")
    except Exception as e:
        if "caBundle" not in str(e):
            fail(f"webhooks without a caBundle failed, but not naming it: {e}")
        print(f"ok webhooks from a Secret without caBundle refused: {' '.join(str(e).split())[-160:]}")

    for bad, expected in (({"replicas": "two"}, "replicas"), ({"image": {"repository": ""}}, "repository"), ({"logFormat": "xml"}, "logFormat"), ({"webhook": {"failurePolicy": "Sometimes"}}, "failurePolicy"), ({"tracing": {"otlpEndpoint": "https://collector:4318"}}, "otlpEndpoint")):
        try:
            chart.validate_schema(bad)
        except Exception as e:  # HelmValuesError
            if expected not in str(e):
                fail(f"values {bad} rejected, but the message does not name {expected}: {e}")
            print(f"ok values {json.dumps(bad)} rejected: {' '.join(str(e).split())[:200]}")
            continue
        fail(f"values {bad} were accepted")


if __name__ == "__main__":
    main()
