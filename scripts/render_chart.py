#!/usr/bin/env python3
"""Renders a Helm chart with the real Helm v4 SDK (helm-python-sdk) as `helm template` would.

Usage: render_chart.py CHART_DIR RELEASE NAMESPACE VALUES_JSON
Prints the manifests (NOTES.txt left out) as one multi-document YAML stream.
"""
import json
import sys

import helm_python as helm
import yaml


def main():
    chart_dir, release, namespace, values = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    rendered = helm.Chart.load(chart_dir).render(values, name=release, namespace=namespace, is_install=True)
    docs = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    print("\n---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs))


if __name__ == "__main__":
    main()
