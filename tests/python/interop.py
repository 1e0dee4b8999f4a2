"""The Python `kubernetes` client against krust-apiserver (run by tests/tests/clients.rs with
the server's kubeconfig as argv[1]): typed create/read of built-in kinds, the defaults the server
writes, a custom resource with its schema's defaults and CEL rules, and a watch.
Prints `ok <check>` per passed check; any failure raises (non-zero exit)."""
import sys

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config(config_file=sys.argv[1])
core, apps = client.CoreV1Api(), client.AppsV1Api()
ns = "python"


def ok(what):
    print(f"ok {what}", flush=True)


core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
got = core.read_namespace(ns)
assert got.metadata.labels["kubernetes.io/metadata.name"] == ns, got.metadata.labels
ok("namespace label")

container = client.V1Container(name="web", image="nginx", ports=[client.V1ContainerPort(container_port=80)])
deployment = client.V1Deployment(
    metadata=client.V1ObjectMeta(name="web"),
    spec=client.V1DeploymentSpec(
        selector=client.V1LabelSelector(match_labels={"app": "web"}),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={"app": "web"}),
            spec=client.V1PodSpec(containers=[container]),
        ),
    ),
)
apps.create_namespaced_deployment(ns, deployment)
d = apps.read_namespaced_deployment("web", ns)
assert d.spec.replicas == 1 and d.spec.revision_history_limit == 10, d.spec
assert d.spec.progress_deadline_seconds == 600
assert d.spec.strategy.type == "RollingUpdate" and d.spec.strategy.rolling_update.max_surge == "25%"
pod = d.spec.template.spec
assert (pod.restart_policy, pod.dns_policy, pod.scheduler_name) == ("Always", "ClusterFirst", "default-scheduler")
c = pod.containers[0]
assert c.image_pull_policy == "Always" and c.termination_message_path == "/dev/termination-log", c
assert c.ports[0].protocol == "TCP"
assert d.metadata.creation_timestamp is not None and d.metadata.generation == 1
ok("deployment defaults")

core.create_namespaced_secret(
    ns, client.V1Secret(metadata=client.V1ObjectMeta(name="creds"), string_data={"user": "admin"})
)
s = core.read_namespaced_secret("creds", ns)
assert s.data == {"user": "YWRtaW4="} and s.string_data is None and s.type == "Opaque", s
ok("secret stringData")

svc = client.V1Service(
    metadata=client.V1ObjectMeta(name="web"),
    spec=client.V1ServiceSpec(selector={"app": "web"}, ports=[client.V1ServicePort(port=80, target_port=8080)]),
)
core.create_namespaced_service(ns, svc)
s = core.read_namespaced_service("web", ns)
assert s.spec.type == "ClusterIP" and s.spec.cluster_ip.startswith("10.96."), s.spec
assert s.spec.session_affinity == "None" and s.spec.ip_families == ["IPv4"]
assert s.spec.ports[0].protocol == "TCP" and s.spec.ports[0].target_port == 8080
ok("service defaults")

# A custom resource: the CRD's schema defaults and its CEL validation rules.
crd = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "websites.example.org"},
    "spec": {
        "group": "example.org",
        "scope": "Namespaced",
        "names": {"plural": "websites", "singular": "website", "kind": "Website"},
        "versions": [{
            "name": "v1",
            "served": True,
            "storage": True,
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {
                    "type": "object",
                    "x-kubernetes-validations": [
                        {"rule": "self.minReplicas <= self.replicas", "message": "replicas must be at least minReplicas"},
                        {"rule": "self.image == oldSelf.image", "message": "image is immutable"},
                    ],
                    "properties": {
                        "image": {"type": "string"},
                        "replicas": {"type": "integer", "default": 2},
                        "minReplicas": {"type": "integer", "default": 1},
                    },
                }},
            }},
        }],
    },
}
client.ApiextensionsV1Api().create_custom_resource_definition(crd)
custom = client.CustomObjectsApi()
for _ in range(50):
    try:
        custom.list_namespaced_custom_object("example.org", "v1", ns, "websites")
        break
    except ApiException:
        import time
        time.sleep(0.1)
site = {"apiVersion": "example.org/v1", "kind": "Website", "metadata": {"name": "blog"}, "spec": {"image": "nginx"}}
created = custom.create_namespaced_custom_object("example.org", "v1", ns, "websites", site)
assert created["spec"] == {"image": "nginx", "replicas": 2, "minReplicas": 1}, created
ok("custom resource defaults")
bad = {"apiVersion": "example.org/v1", "kind": "Website", "metadata": {"name": "bad"},
       "spec": {"image": "nginx", "replicas": 1, "minReplicas": 3}}
try:
    custom.create_namespaced_custom_object("example.org", "v1", ns, "websites", bad)
    raise AssertionError("the rule did not reject")
except ApiException as e:
    assert e.status == 422, e
    assert "replicas must be at least minReplicas" in e.body, e.body
ok("cel rule")
try:
    custom.patch_namespaced_custom_object("example.org", "v1", ns, "websites", "blog", {"spec": {"image": "httpd"}})
    raise AssertionError("the transition rule did not reject")
except ApiException as e:
    assert e.status == 422 and "image is immutable" in e.body, e.body
ok("cel transition rule")

# A watch from the resourceVersion of a list sees a change.
listed = core.list_namespaced_config_map(ns)
core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="late"), data={"a": "1"}))
w = watch.Watch()
for event in w.stream(core.list_namespaced_config_map, ns, resource_version=listed.metadata.resource_version,
                      timeout_seconds=10):
    if event["object"].metadata.name == "late":
        assert event["type"] == "ADDED" and event["object"].data == {"a": "1"}
        w.stop()
        break
else:
    raise AssertionError("the watch never saw the ConfigMap")
ok("watch")
