//! Realistic objects for the benchmarks: Pods of about 3 KB of JSON, shaped like those a
//! Deployment creates (labels, owner reference, managedFields, probes, status conditions).

use serde_json::{Value, json};

/// A Pod of about 3 KB, unique by `i`.
pub fn pod(i: usize, resource_version: u64) -> Value {
    let name = format!("web-7c9f8d6b5-{i:06}");
    let ts = "2026-11-26T10:00:00Z";
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "generateName": "web-7c9f8d6b5-",
            "namespace": format!("team-{}", i % 20),
            "uid": format!("8d1c7e2a-4b3f-4e6a-9c1d-{i:012}"),
            "resourceVersion": resource_version.to_string(),
            "creationTimestamp": ts,
            "labels": {"app": "web", "pod-template-hash": "7c9f8d6b5", "tier": "frontend"},
            "annotations": {
                "prometheus.io/scrape": "true"
            },
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7c9f8d6b5",
                "uid": "0b6e2f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "controller": true, "blockOwnerDeletion": true
            }],
            "managedFields": [
                {
                    "manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "time": ts,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}, "f:tier": {}},
                        "f:ownerReferences": {".": {}, "k:{\"uid\":\"0b6e2f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b\"}": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {},
                        "f:ports": {".": {}, "k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}}}}}
                },
                {
                    "manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": ts, "fieldsType": "FieldsV1",
                    "subresource": "status",
                    "fieldsV1": {"f:status": {"f:conditions": {}, "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {}, "f:podIP": {}, "f:startTime": {}}}
                }
            ]
        },
        "spec": {
            "containers": [{
                "name": "web",
                "image": "registry.example.com/team/web:v1.4.2",
                "imagePullPolicy": "IfNotPresent",
                "ports": [{"containerPort": 8080, "protocol": "TCP", "name": "http"}],
                "env": [
                    {"name": "LOG_LEVEL", "value": "info"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}
                ],
                "resources": {"limits": {"memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 10},
                "volumeMounts": [{"name": "kube-api-access-x7k2p", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
                "terminationMessagePath": "/dev/termination-log"
            }],
            "volumes": [{"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
            ]}}],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "nodeName": format!("node-{}", i % 50),
            "schedulerName": "default-scheduler",
            "priority": 0,
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": ts},
                {"type": "ContainersReady", "status": "True", "lastProbeTime": null, "lastTransitionTime": ts},
                {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": ts}
            ],
            "hostIP": format!("10.0.{}.{}", i % 50, 10),
            "podIP": format!("10.244.{}.{}", (i / 250) % 250, i % 250),
            "podIPs": [{"ip": format!("10.244.{}.{}", (i / 250) % 250, i % 250)}],
            "startTime": ts,
            "containerStatuses": [{
                "name": "web", "ready": true, "restartCount": 0, "started": true,
                "image": "registry.example.com/team/web:v1.4.2",
                "containerID": format!("containerd://{:064x}", i),
                "lastState": {},
                "state": {"running": {"startedAt": ts}}
            }],
            "qosClass": "Burstable"
        }
    })
}

/// `n` watch events (`ADDED`), one JSON object per line, as a kube-apiserver sends them:
/// `type` before `object` (written by hand: `serde_json::Value` maps sort their keys, which
/// would put `object` first and force decoders to buffer the whole object).
pub fn watch_stream(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 3300);
    for i in 0..n {
        out.extend_from_slice(br#"{"type":"ADDED","object":"#);
        serde_json::to_writer(&mut out, &pod(i, 1000 + i as u64)).expect("serializing a fixture cannot fail");
        out.extend_from_slice(b"}\n");
    }
    out
}

/// The same Pod as [`pod`] (`label` adds one more label), written straight as text in the key
/// order kube-apiserver uses (metadata's identity first, managedFields last), about 60 times
/// faster than building a `Value`: the 1M-object scenarios need it.
pub fn pod_json(i: usize, resource_version: u64, label: Option<&str>, out: &mut Vec<u8>) {
    use std::io::Write;
    let ts = "2026-11-26T10:00:00Z";
    let extra = label.map(|l| format!(r#","revision":"{l}""#)).unwrap_or_default();
    let ns = i % 20;
    let node = i % 50;
    let (ip_a, ip_b) = ((i / 250) % 250, i % 250);
    let managed = r#"[{"manager":"kube-controller-manager","operation":"Update","apiVersion":"v1","time":"2026-11-26T10:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:generateName":{},"f:labels":{".":{},"f:app":{},"f:pod-template-hash":{},"f:tier":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"0b6e2f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b\"}":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:protocol":{}}}}}}}},{"manager":"kubelet","operation":"Update","apiVersion":"v1","time":"2026-11-26T10:00:00Z","fieldsType":"FieldsV1","subresource":"status","fieldsV1":{"f:status":{"f:conditions":{},"f:containerStatuses":{},"f:hostIP":{},"f:phase":{},"f:podIP":{},"f:startTime":{}}}}]"#;
    let _ = write!(
        out,
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"web-7c9f8d6b5-{i:06}","generateName":"web-7c9f8d6b5-","namespace":"team-{ns}","uid":"8d1c7e2a-4b3f-4e6a-9c1d-{i:012}","resourceVersion":"{resource_version}","creationTimestamp":"{ts}","labels":{{"app":"web","pod-template-hash":"7c9f8d6b5","tier":"frontend"{extra}}},"annotations":{{"prometheus.io/scrape":"true"}},"ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7c9f8d6b5","uid":"0b6e2f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b","controller":true,"blockOwnerDeletion":true}}],"managedFields":{managed}}},"spec":{{"volumes":[{{"name":"kube-api-access-x7k2p","projected":{{"sources":[{{"serviceAccountToken":{{"expirationSeconds":3607,"path":"token"}}}}],"defaultMode":420}}}}],"containers":[{{"name":"web","image":"registry.example.com/team/web:v1.4.2","ports":[{{"name":"http","containerPort":8080,"protocol":"TCP"}}],"env":[{{"name":"LOG_LEVEL","value":"info"}},{{"name":"POD_NAME","valueFrom":{{"fieldRef":{{"apiVersion":"v1","fieldPath":"metadata.name"}}}}}}],"resources":{{"limits":{{"memory":"256Mi"}},"requests":{{"cpu":"100m","memory":"128Mi"}}}},"volumeMounts":[{{"name":"kube-api-access-x7k2p","readOnly":true,"mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"}}],"readinessProbe":{{"httpGet":{{"path":"/readyz","port":8080,"scheme":"HTTP"}},"periodSeconds":10}},"terminationMessagePath":"/dev/termination-log","imagePullPolicy":"IfNotPresent"}}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","serviceAccountName":"default","nodeName":"node-{node}","schedulerName":"default-scheduler","priority":0,"enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"}},"status":{{"phase":"Running","conditions":[{{"type":"Ready","status":"True","lastProbeTime":null,"lastTransitionTime":"{ts}"}},{{"type":"ContainersReady","status":"True","lastProbeTime":null,"lastTransitionTime":"{ts}"}},{{"type":"PodScheduled","status":"True","lastProbeTime":null,"lastTransitionTime":"{ts}"}}],"hostIP":"10.0.{node}.10","podIP":"10.244.{ip_a}.{ip_b}","podIPs":[{{"ip":"10.244.{ip_a}.{ip_b}"}}],"startTime":"{ts}","containerStatuses":[{{"name":"web","state":{{"running":{{"startedAt":"{ts}"}}}},"lastState":{{}},"ready":true,"restartCount":0,"image":"registry.example.com/team/web:v1.4.2","containerID":"containerd://{i:064x}","started":true}}],"qosClass":"Burstable"}}}}"#
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_pod_is_the_value_pod() {
        for i in [0, 7, 123_456] {
            let mut text = Vec::new();
            pod_json(i, 42, None, &mut text);
            let parsed: Value = serde_json::from_slice(&text).unwrap();
            assert_eq!(parsed, pod(i, 42));
        }
        let mut labelled = Vec::new();
        pod_json(1, 1, Some("2"), &mut labelled);
        let parsed: Value = serde_json::from_slice(&labelled).unwrap();
        assert_eq!(parsed["metadata"]["labels"]["revision"], "2");
    }
}
