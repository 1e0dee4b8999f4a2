//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`), as kubectl's
//! generators and client-go's typed clients send them, decoded to the JSON object they stand for.
//!
//! The body is `k8s\0` followed by a `runtime.Unknown` (typeMeta, raw); `raw` is the object's
//! message, decoded with k8s-pb's prost types and written out as JSON by
//! [`generated`] (an impl per message, generated from k8s-pb's messages and k8s-openapi's
//! JSON names by `codegen/protobuf_json.py`) and [`json`] (the rules and the special messages).
//! Every built-in kind this server serves is read; custom resources have no protobuf form
//! (kube-apiserver refuses them too).

use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::Value;

mod generated;
mod json;

/// Decodes a protobuf body to the JSON object it stands for. `Err(None)` for a kind this
/// server does not decode, `Err(Some(msg))` for a malformed body.
pub(crate) fn decode(body: &[u8]) -> Result<Value, Option<String>> {
    let inner =
        body.strip_prefix(b"k8s\0").ok_or_else(|| Some("missing the k8s protobuf prefix".to_string()))?;
    let envelope = Unknown::decode(inner).map_err(|e| Some(e.to_string()))?;
    let type_meta = envelope.type_meta.unwrap_or_default();
    let (api_version, kind) = (type_meta.api_version.unwrap_or_default(), type_meta.kind.unwrap_or_default());
    if let Some(encoding) = envelope.content_encoding.filter(|e| !e.is_empty()) {
        return Err(Some(format!("content encoding {encoding:?} is not supported")));
    }
    let raw = envelope.raw.unwrap_or_default();
    // DeleteOptions is registered in every group version (client-go sends it in the version of
    // the resource it deletes: `v1`, `apps/v1`, ...).
    let decoded = if kind == "DeleteOptions" {
        Some(delete_options(&raw))
    } else {
        generated::decode(&api_version, &kind, &raw)
    };
    let mut object = match decoded {
        None => return Err(None),
        Some(decoded) => decoded.map_err(|e| Some(format!("{api_version} {kind}: {e}")))?,
    };
    if let Value::Object(fields) = &mut object {
        // apiVersion and kind first, as a JSON client would send them.
        let mut out = serde_json::Map::with_capacity(fields.len() + 2);
        out.insert("apiVersion".into(), Value::String(api_version));
        out.insert("kind".into(), Value::String(kind));
        out.extend(std::mem::take(fields));
        return Ok(Value::Object(out));
    }
    Ok(object)
}

fn delete_options(raw: &[u8]) -> Result<Value, String> {
    use json::ToJson;
    k8s_pb::apimachinery::pkg::apis::meta::v1::DeleteOptions::decode(raw)
        .map_err(|e| e.to_string())?
        .to_json()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::{
        api::{apps::v1 as apps, core::v1 as core},
        apimachinery::pkg::{
            api::resource::Quantity,
            apis::meta::v1::{LabelSelector, ObjectMeta, Time},
            runtime::TypeMeta,
            util::intstr::IntOrString,
        },
    };
    use serde_json::json;

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(TypeMeta { api_version: Some(api_version.into()), kind: Some(kind.into()) }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut body = b"k8s\0".to_vec();
        body.extend(unknown.encode_to_vec());
        body
    }

    /// DeleteOptions in the version of the resource deleted, as client-go (Helm) sends them.
    #[test]
    fn decodes_delete_options_of_any_group_version() {
        use k8s_pb::apimachinery::pkg::apis::meta::v1::{DeleteOptions, Preconditions};
        let options = DeleteOptions {
            propagation_policy: Some("Foreground".into()),
            preconditions: Some(Preconditions { uid: Some("u-1".into()), resource_version: None }),
            ..Default::default()
        };
        for api_version in ["v1", "apps/v1"] {
            let body = envelope(api_version, "DeleteOptions", options.encode_to_vec());
            let decoded = decode(&body).unwrap();
            assert_eq!(decoded["propagationPolicy"], "Foreground", "{decoded}");
            assert_eq!(decoded["preconditions"]["uid"], "u-1", "{decoded}");
        }
        assert!(decode(&envelope("v1", "DeleteOptions", vec![0xff, 0xff])).is_err_and(|e| e.is_some()));
    }

    /// A Deployment as Go's encoder writes it: every non-pointer field present, zero or not.
    #[test]
    fn decodes_a_deployment_as_kubectl_create_sends_it() {
        let zero_meta = |name: &str| ObjectMeta {
            name: Some(name.into()),
            generate_name: Some(String::new()),
            namespace: Some(String::new()),
            generation: Some(0),
            creation_timestamp: Some(Time { seconds: Some(0), nanos: Some(0) }),
            labels: [("app".to_string(), "web".to_string())].into(),
            ..Default::default()
        };
        let container = core::Container {
            name: Some("nginx".into()),
            image: Some("nginx".into()),
            resources: Some(core::ResourceRequirements {
                limits: [("cpu".to_string(), Quantity { string: Some("500m".into()) })].into(),
                ..Default::default()
            }),
            termination_message_path: Some(String::new()),
            tty: Some(false),
            ..Default::default()
        };
        let deployment = apps::Deployment {
            metadata: Some(zero_meta("web")),
            spec: Some(apps::DeploymentSpec {
                replicas: Some(0),
                selector: Some(LabelSelector {
                    match_labels: [("app".to_string(), "web".to_string())].into(),
                    ..Default::default()
                }),
                template: Some(core::PodTemplateSpec {
                    metadata: Some(zero_meta("")),
                    spec: Some(core::PodSpec {
                        containers: vec![container],
                        restart_policy: Some(String::new()),
                        host_network: Some(false),
                        ..Default::default()
                    }),
                }),
                strategy: Some(apps::DeploymentStrategy {
                    r#type: Some(String::new()),
                    rolling_update: Some(apps::RollingUpdateDeployment {
                        max_surge: Some(IntOrString {
                            r#type: Some(1),
                            int_val: Some(0),
                            str_val: Some("25%".into()),
                        }),
                        max_unavailable: Some(IntOrString {
                            r#type: Some(0),
                            int_val: Some(1),
                            str_val: None,
                        }),
                    }),
                }),
                min_ready_seconds: Some(0),
                ..Default::default()
            }),
            status: Some(Default::default()),
        };
        let obj = decode(&envelope("apps/v1", "Deployment", deployment.encode_to_vec())).unwrap();
        assert_eq!(
            obj,
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {
                            "containers": [{
                                "name": "nginx",
                                "image": "nginx",
                                "resources": {"limits": {"cpu": "500m"}},
                            }],
                        },
                    },
                    "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                },
                "status": {},
            })
        );
    }

    #[test]
    fn names_inline_fields_and_bytes_read_as_in_json() {
        let pod = core::Pod {
            spec: Some(core::PodSpec {
                host_ipc: Some(true),
                volumes: vec![core::Volume {
                    name: Some("conf".into()),
                    volume_source: Some(core::VolumeSource {
                        config_map: Some(core::ConfigMapVolumeSource {
                            local_object_reference: Some(core::LocalObjectReference {
                                name: Some("cm".into()),
                            }),
                            default_mode: Some(420),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let obj = decode(&envelope("v1", "Pod", pod.encode_to_vec())).unwrap();
        assert_eq!(
            obj["spec"],
            json!({"hostIPC": true, "volumes": [{"name": "conf", "configMap": {"name": "cm", "defaultMode": 420}}]})
        );
        let secret = core::Secret {
            data: [("k".to_string(), b"v".to_vec())].into(),
            r#type: Some("Opaque".into()),
            ..Default::default()
        };
        let obj = decode(&envelope("v1", "Secret", secret.encode_to_vec())).unwrap();
        assert_eq!(
            obj,
            json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": "dg=="}, "type": "Opaque"})
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert_eq!(decode(&envelope("example.com/v1", "Website", vec![])), Err(None));
        assert!(matches!(decode(b"k8s\0\x0a\x05"), Err(Some(_))), "truncated");
        assert!(matches!(decode(b"nope"), Err(Some(_))));
        // A malformed field inside the object: an error naming the kind, never a panic.
        assert!(
            matches!(decode(&envelope("v1", "ConfigMap", vec![0x0a, 0x7f])), Err(Some(e)) if e.contains("ConfigMap"))
        );
    }
}
