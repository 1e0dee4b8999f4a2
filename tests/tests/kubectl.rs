//! The machine's kubectl against the krust-apiserver binary: discovery, client-side and
//! server-side apply of a CRD and a custom resource, get with selectors and watches, patches,
//! finalizers and namespace deletion.

use std::time::Duration;

use krust_tests::ApiServerProcess;

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: websites.example.org
spec:
  group: example.org
  scope: Namespaced
  names: {plural: websites, singular: website, kind: Website, shortNames: [ws]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Image, type: string, jsonPath: .spec.image}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [image]
            properties:
              image: {type: string}
              replicas: {type: integer, minimum: 1, maximum: 10}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#;

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
"#;

#[test]
fn api_resources_lists_the_served_resources() {
    let server = ApiServerProcess::start(&[]);
    let out = server.ok(&["api-resources"]);
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert!(lines.contains(&vec!["deployments", "deploy", "apps/v1", "true", "Deployment"]), "{out}");
    assert!(lines.contains(&vec!["namespaces", "ns", "v1", "false", "Namespace"]), "{out}");
    assert!(lines.contains(&vec!["leases", "coordination.k8s.io/v1", "true", "Lease"]), "{out}");
    let versions = server.ok(&["api-versions"]);
    assert!(versions.lines().any(|l| l == "apps/v1") && versions.lines().any(|l| l == "v1"), "{versions}");
    let namespaces = server.ok(&["get", "namespaces", "-o", "name"]);
    assert!(namespaces.contains("namespace/default") && namespaces.contains("namespace/kube-system"));
}

#[test]
fn apply_crd_and_custom_resource_client_and_server_side() {
    let server = ApiServerProcess::start(&[]);
    server.apply(CRD, &[]);
    server.ok(&["wait", "--for", "condition=established", "--timeout=20s", "crd/websites.example.org"]);
    let site = "apiVersion: example.org/v1\nkind: Website\nmetadata: {name: blog}\nspec: {image: \"nginx:1\", replicas: 2}\n";
    assert!(server.apply(site, &[]).contains("website.example.org/blog created"));
    let changed = site.replace("replicas: 2", "replicas: 3");
    assert!(server.apply(&changed, &[]).contains("configured"));
    let obj = server.get_json(&["website", "blog"]);
    assert_eq!(obj["spec"]["replicas"], 3);
    assert!(obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].is_string());

    // Server-side apply of another object, then of the same one with a new value.
    let ssa =
        "apiVersion: example.org/v1\nkind: Website\nmetadata: {name: shop}\nspec: {image: \"nginx:2\"}\n";
    assert!(server.apply(ssa, &["--server-side"]).contains("serverside-applied"));
    let obj = server.get_json(&["ws", "shop", "--show-managed-fields"]);
    assert_eq!(obj["metadata"]["managedFields"][0]["manager"], "kubectl");
    assert_eq!(obj["metadata"]["managedFields"][0]["operation"], "Apply");
    // Invalid objects are refused with the schema's message.
    let out =
        server.kubectl_with_input(&["apply", "-f", "-"], Some(&site.replace("replicas: 2", "replicas: 20")));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("spec.replicas"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn get_prints_the_crd_printer_columns_also_while_watching() {
    let server = ApiServerProcess::start(&[]);
    server.apply(CRD, &[]);
    server.ok(&["wait", "--for", "condition=established", "--timeout=20s", "crd/websites.example.org"]);
    let site = "apiVersion: example.org/v1\nkind: Website\nmetadata: {name: blog}\nspec: {image: \"nginx:1\", replicas: 2}\n";
    server.apply(site, &[]);
    let status = r#"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#;
    server.ok(&["patch", "website", "blog", "--subresource", "status", "--type", "merge", "-p", status]);
    let table = server.ok(&["get", "websites"]);
    let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["NAME", "IMAGE", "REPLICAS", "READY", "AGE"], "{table}");
    assert_eq!(rows[1][..4], ["blog", "nginx:1", "2", "True"], "{table}");
    assert!(rows[1][4].ends_with('s'), "an age in seconds: {table}");
    let wide = server.ok(&["get", "ws", "-A", "--show-labels"]);
    let header: Vec<&str> = wide.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["NAMESPACE", "NAME", "IMAGE", "REPLICAS", "READY", "AGE", "LABELS"], "{wide}");

    // Built-in kinds have kube-apiserver's columns.
    server.apply(DEPLOYMENT, &[]);
    server.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: two-keys}\ndata: {a: \"1\", b: \"2\"}\n",
        &[],
    );
    let rows = |out: String| -> Vec<Vec<String>> {
        out.lines().map(|l| l.split_whitespace().map(String::from).collect()).collect()
    };
    let deployments = rows(server.ok(&["get", "deployments"]));
    assert_eq!(deployments[0], ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert_eq!(deployments[1][..2], ["web".to_string(), "0/2".to_string()]);
    let config_maps = rows(server.ok(&["get", "configmap", "two-keys"]));
    assert_eq!(config_maps[0], ["NAME", "DATA", "AGE"]);
    assert_eq!(config_maps[1][..2], ["two-keys".to_string(), "2".to_string()]);
    let namespaces = rows(server.ok(&["get", "namespace", "default"]));
    assert_eq!(namespaces[0], ["NAME", "STATUS", "AGE"]);
    assert_eq!(namespaces[1][..2], ["default".to_string(), "Active".to_string()]);

    // kubectl get -w asks for Tables on the watch too: changes keep the columns.
    let (mut watch, rx) =
        server.kubectl_lines(&["get", "websites", "-w", "--output-watch-events", "--request-timeout=30s"]);
    let next = || {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("a line from kubectl get -w");
        line.split_whitespace().map(String::from).collect::<Vec<_>>()
    };
    assert_eq!(next()[..5], ["EVENT", "NAME", "IMAGE", "REPLICAS", "READY"]);
    assert_eq!(next()[..5], ["ADDED", "blog", "nginx:1", "2", "True"]);
    server.ok(&["patch", "website", "blog", "--type", "merge", "-p", r#"{"spec":{"image":"nginx:2"}}"#]);
    assert_eq!(next()[..5], ["MODIFIED", "blog", "nginx:2", "2", "True"]);
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn get_with_labels_json_and_patches() {
    let server = ApiServerProcess::start(&[]);
    server.apply(DEPLOYMENT, &[]);
    server.apply(&DEPLOYMENT.replace("name: web", "name: api").replace("tier: front", "tier: back"), &[]);
    let front = server.ok(&["get", "deploy", "-l", "tier=front", "-o", "name"]);
    assert_eq!(front.trim(), "deployment.apps/web");
    let both = server.ok(&["get", "deploy", "-l", "app in (web),tier", "-o", "name"]);
    assert_eq!(both.lines().count(), 2, "{both}");

    server.ok(&["patch", "deploy", "web", "--type", "merge", "-p", r#"{"spec":{"replicas":3}}"#]);
    server.ok(&[
        "patch",
        "deploy",
        "web",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/patched","value":"yes"}]"#,
    ]);
    server.ok(&[
        "patch",
        "deploy",
        "web",
        "--type",
        "strategic",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}"#,
    ]);
    let obj = server.get_json(&["deploy", "web"]);
    assert_eq!(obj["spec"]["replicas"], 3);
    assert_eq!(obj["metadata"]["labels"]["patched"], "yes");
    let names: Vec<&str> = obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "sidecar"], "strategic merge keeps web and adds sidecar");
    assert_eq!(obj["metadata"]["generation"], 3);
    server.ok(&["scale", "deploy", "web", "--replicas", "5"]);
    assert_eq!(server.get_json(&["deploy", "web"])["spec"]["replicas"], 5);
}

#[test]
fn get_watch_sees_a_change_made_by_another_command() {
    let server = ApiServerProcess::start(&[]);
    server.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: watched}\ndata: {a: \"1\"}\n", &[]);
    let (mut watch, rx) = server.kubectl_lines(&[
        "get",
        "configmap",
        "watched",
        "-w",
        "-o",
        "jsonpath={.data.a}{\"\\n\"}",
        "--request-timeout=30s",
    ]);
    // kubectl prints the current value once its GET is done; it then watches from that
    // resourceVersion, so a change made after this line cannot be missed.
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)).expect("the first line"), "1");
    server.ok(&["patch", "configmap", "watched", "--type", "merge", "-p", r#"{"data":{"a":"2"}}"#]);
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)).expect("the watched change"), "2");
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn delete_waits_for_finalizers_and_namespaces_cascade() {
    let server = ApiServerProcess::start(&[]);
    server.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, finalizers: [example.org/hold]}\n",
        &[],
    );
    server.ok(&["delete", "configmap", "held", "--wait=false"]);
    let obj = server.get_json(&["configmap", "held"]);
    assert!(obj["metadata"]["deletionTimestamp"].is_string(), "still there, marked for deletion");
    server.ok(&[
        "patch",
        "configmap",
        "held",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    let out = server.kubectl(&["get", "configmap", "held"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound"));

    // kubectl's generators send protobuf bodies.
    server.ok(&["create", "namespace", "team"]);
    server.ok(&["create", "secret", "generic", "token", "-n", "team", "--from-literal=key=s3cret"]);
    let secret = server.get_json(&["secret", "token", "-n", "team"]);
    assert_eq!(secret["data"]["key"], "czNjcmV0", "base64 of s3cret");
    server.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: team}\n", &[]);
    server.apply(DEPLOYMENT, &["-n", "team"]);
    server.ok(&["delete", "namespace", "team", "--timeout=30s"]);
    let out = server.kubectl(&["get", "namespace", "team"]);
    assert!(!out.status.success(), "the namespace is gone");
    let left = server.ok(&["get", "configmaps,deployments", "-A", "-o", "name"]);
    assert!(!left.contains("/a\n") && !left.contains("deployment.apps/web"), "{left}");
}

#[test]
fn the_binary_requires_its_token_serves_tls_and_stops_on_sigterm() {
    let server = ApiServerProcess::start(&["--tls", "--token", "t0ken"]);
    assert!(server.url.starts_with("https://127.0.0.1:"));
    let out = server.ok(&["get", "namespaces", "-o", "name"]);
    assert!(out.contains("namespace/default"));
    // The kubeconfig holds the token: only its owner may read it.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(server.kubeconfig()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the kubeconfig is {:o}", mode & 0o777);
    // Without the token (or with a token one byte off, or a prefix of it) kubectl is refused.
    let kubeconfig = std::fs::read_to_string(server.kubeconfig()).unwrap();
    for wrong in ["t0kem", "t0ke"] {
        std::fs::write(server.kubeconfig(), kubeconfig.replace("token: t0ken", &format!("token: {wrong}")))
            .unwrap();
        let out = server.kubectl(&["get", "namespaces"]);
        assert!(String::from_utf8_lossy(&out.stderr).contains("Unauthorized"));
    }
    std::fs::write(server.kubeconfig(), kubeconfig.replace("token: t0ken", "token: wrong")).unwrap();
    let out = server.kubectl(&["get", "namespaces"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Unauthorized"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(server.terminate(), "exits cleanly on SIGTERM");
}

/// Service account tokens and delegated authentication and authorization, as kubectl and a
/// secured metrics endpoint use them: `kubectl create token` issues a token, `kubectl auth
/// whoami` names its user, `kubectl auth can-i` answers from the RBAC objects (a
/// ClusterRoleBinding for a non-resource URL, a RoleBinding in one namespace only), and
/// TokenReview/SubjectAccessReview answer as kube-apiserver does.
#[test]
fn tokens_reviews_and_rbac_answer_kubectl_auth() {
    let server = ApiServerProcess::start(&["--tls", "--token", "admin-secret"]);
    server.ok(&["create", "namespace", "team"]);
    server.ok(&["create", "serviceaccount", "scraper"]);
    let token = server.ok(&["create", "token", "scraper", "--duration", "1h"]).trim().to_string();
    assert!(!token.is_empty());
    let missing = server.kubectl(&["create", "token", "nobody"]);
    assert!(!missing.status.success(), "a token for a missing service account");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"), "{missing:?}");
    let whoami = server.ok(&["auth", "whoami", "--token", &token, "-o", "json"]);
    let whoami: serde_json::Value = serde_json::from_str(&whoami).unwrap();
    assert_eq!(whoami["status"]["userInfo"]["username"], "system:serviceaccount:default:scraper");
    assert!(
        whoami["status"]["userInfo"]["groups"]
            .as_array()
            .unwrap()
            .contains(&"system:serviceaccounts:default".into())
    );
    // The token works for requests too; an unknown one is refused.
    server.ok(&["get", "configmaps", "--token", &token]);
    let refused = server.kubectl(&["get", "configmaps", "--token", "not-a-token"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Unauthorized"), "{refused:?}");

    let can_i = |args: &[&str]| {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--token", &token]);
        String::from_utf8_lossy(&server.kubectl(&all).stdout).trim().to_string()
    };
    assert_eq!(can_i(&["get", "/metrics"]), "no");
    assert_eq!(can_i(&["list", "configmaps", "-n", "team"]), "no");
    server.apply(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: metrics-reader}
rules:
- nonResourceURLs: ["/metrics"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: scraper-metrics}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: metrics-reader}
subjects:
- {kind: ServiceAccount, name: scraper, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: cm-reader, namespace: team}
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: scraper-cm, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-reader}
subjects:
- {kind: ServiceAccount, name: scraper, namespace: default}
"#,
        &[],
    );
    assert_eq!(can_i(&["get", "/metrics"]), "yes");
    assert_eq!(can_i(&["get", "/healthz"]), "no");
    assert_eq!(can_i(&["list", "configmaps", "-n", "team"]), "yes");
    assert_eq!(
        can_i(&["list", "configmaps", "-n", "default"]),
        "no",
        "a RoleBinding grants in its namespace only"
    );
    assert_eq!(can_i(&["delete", "configmaps", "-n", "team"]), "no");
    // The admin (the server's own token) may do anything.
    assert_eq!(server.ok(&["auth", "can-i", "delete", "nodes"]).trim(), "yes");

    // The review APIs themselves, as a metrics endpoint calls them.
    let review = |manifest: String| -> serde_json::Value {
        let out = server.kubectl_with_input(&["create", "-f", "-", "-o", "json"], Some(&manifest));
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let tr = review(format!(
        r#"{{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {{"token": "{token}"}}}}"#
    ));
    assert_eq!(tr["status"]["authenticated"], true, "{tr}");
    assert_eq!(tr["status"]["user"]["username"], "system:serviceaccount:default:scraper");
    let bad = review(
        r#"{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "nope"}}"#
            .into(),
    );
    assert!(bad["status"]["authenticated"].is_null() || bad["status"]["authenticated"] == false, "{bad}");
    assert!(bad["status"]["error"].as_str().unwrap_or("").contains("invalid bearer token"), "{bad}");
    let sar = review(
        r#"{"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
            "user": "system:serviceaccount:default:scraper",
            "groups": ["system:serviceaccounts", "system:authenticated"],
            "nonResourceAttributes": {"path": "/metrics", "verb": "get"}}}"#
            .into(),
    );
    assert_eq!(sar["status"]["allowed"], true, "{sar}");
    assert_eq!(
        sar["status"]["reason"],
        r#"RBAC: allowed by ClusterRoleBinding "scraper-metrics" of ClusterRole "metrics-reader" to ServiceAccount "default/scraper""#
    );
    let denied = review(
        r#"{"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
            "user": "someone", "nonResourceAttributes": {"path": "/metrics", "verb": "get"}}}"#
            .into(),
    );
    assert_eq!(denied["status"]["allowed"], false, "{denied}");
    let resources = server.ok(&["api-resources", "--api-group", "authorization.k8s.io", "-o", "wide"]);
    let line = resources.lines().find(|l| l.starts_with("subjectaccessreviews ")).unwrap_or_default();
    assert!(line.split_whitespace().any(|w| w == "create") && !line.contains("list"), "{resources}");
}

const WORKLOADS: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: creds}
data: {user: YWRtaW4=, old: b2xk}
stringData: {password: s3cret, old: new}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 8080, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: one}
spec:
  containers:
  - name: app
    image: registry.local:5000/team/app
    ports: [{containerPort: 8080}]
    readinessProbe: {httpGet: {port: 8080}}
  volumes:
  - {name: conf, configMap: {name: conf}}
  - {name: scratch}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: job, image: busybox:1.36}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: job, image: busybox}]
"#;

/// What kube-apiserver fills in on write (issue 19, item 1): objects read back as a cluster's,
/// and applying the same manifest again changes nothing.
#[test]
fn built_in_objects_are_defaulted_as_kube_apiserver_does() {
    let server = ApiServerProcess::start(&[]);
    let first = server.apply(&format!("{DEPLOYMENT}---{WORKLOADS}"), &[]);
    assert!(first.contains("deployment.apps/web created"), "{first}");

    let deploy = server.get_json(&["deploy", "web"]);
    let spec = &deploy["spec"];
    assert_eq!(spec["replicas"], 2, "set values stay");
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    assert_eq!(
        spec["strategy"],
        serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["schedulerName"], "default-scheduler");
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["securityContext"], serde_json::json!({}));
    let c = &pod["containers"][0];
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["imagePullPolicy"], "IfNotPresent", "nginx:1.25 has a tag");

    let secret = server.get_json(&["secret", "creds"]);
    assert!(secret.get("stringData").is_none(), "{secret}");
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(
        secret["data"],
        serde_json::json!({"user": "YWRtaW4=", "password": "czNjcmV0", "old": "bmV3"}),
        "stringData is merged into data and wins"
    );

    let svc = server.get_json(&["svc", "web"]);
    let s = &svc["spec"];
    assert_eq!(s["type"], "ClusterIP");
    assert_eq!(s["sessionAffinity"], "None");
    assert_eq!(s["ipFamilies"], serde_json::json!(["IPv4"]));
    assert_eq!(s["ipFamilyPolicy"], "SingleStack");
    assert_eq!(s["internalTrafficPolicy"], "Cluster");
    let ip = s["clusterIP"].as_str().unwrap();
    assert!(ip.starts_with("10.96."), "{ip}");
    assert_eq!(s["clusterIPs"], serde_json::json!([ip]));
    assert_eq!(s["ports"][0], serde_json::json!({"port": 80, "protocol": "TCP", "targetPort": 80}));
    let np = server.get_json(&["svc", "web-np"]);
    let port = &np["spec"]["ports"][0];
    assert_eq!(port["targetPort"], "http");
    let node_port = port["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&node_port), "{np}");
    assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
    assert_ne!(np["spec"]["clusterIP"], ip, "each Service gets its own ClusterIP");

    let pod = server.get_json(&["pod", "one"]);
    let p = &pod["spec"];
    assert_eq!(p["serviceAccountName"], "default");
    assert_eq!(p["enableServiceLinks"], true);
    assert_eq!(p["priority"], 0);
    assert_eq!(p["tolerations"].as_array().map(Vec::len), Some(2), "{p}");
    let c = &p["containers"][0];
    assert_eq!(c["imagePullPolicy"], "Always", "no tag: latest");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    let probe = &c["readinessProbe"];
    assert_eq!(
        (
            &probe["timeoutSeconds"],
            &probe["periodSeconds"],
            &probe["successThreshold"],
            &probe["failureThreshold"]
        ),
        (&serde_json::json!(1), &serde_json::json!(10), &serde_json::json!(1), &serde_json::json!(3))
    );
    assert_eq!(probe["httpGet"]["scheme"], "HTTP");
    assert_eq!(probe["httpGet"]["path"], "/");
    assert_eq!(p["volumes"][0]["configMap"]["defaultMode"], 420);
    assert_eq!(p["volumes"][1]["emptyDir"], serde_json::json!({}));

    let job = server.get_json(&["job", "once"]);
    let j = &job["spec"];
    assert_eq!(
        (&j["completions"], &j["parallelism"], &j["backoffLimit"]),
        (&serde_json::json!(1), &serde_json::json!(1), &serde_json::json!(6))
    );
    assert_eq!(j["completionMode"], "NonIndexed");
    let uid = job["metadata"]["uid"].as_str().unwrap();
    assert_eq!(j["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"], uid);
    assert_eq!(j["template"]["metadata"]["labels"]["job-name"], "once");
    assert_eq!(j["template"]["spec"]["restartPolicy"], "Never", "set values stay");

    let cron = server.get_json(&["cronjob", "nightly"]);
    let cj = &cron["spec"];
    assert_eq!(
        (&cj["concurrencyPolicy"], &cj["successfulJobsHistoryLimit"], &cj["failedJobsHistoryLimit"]),
        (&serde_json::json!("Allow"), &serde_json::json!(3), &serde_json::json!(1))
    );
    assert_eq!(cj["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");

    let ns = server.get_json(&["ns", "default"]);
    assert_eq!(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "default");

    // The same manifests again: nothing to change (a client diffing desired and actual settles).
    // kubectl still sends a patch for the Secret's stringData and the Pod's volume without a
    // source ($retainKeys), as against a cluster; the defaults make them no-ops.
    let kinds =
        ["deploy/web", "secret/creds", "svc/web", "svc/web-np", "pod/one", "job/once", "cronjob/nightly"];
    let versions = |server: &ApiServerProcess| -> Vec<serde_json::Value> {
        kinds.iter().map(|k| server.get_json(&[k])["metadata"]["resourceVersion"].clone()).collect()
    };
    let before = versions(&server);
    let again = server.apply(&format!("{DEPLOYMENT}---{WORKLOADS}"), &[]);
    for line in again.lines() {
        assert!(
            line.ends_with(" unchanged") || line == "secret/creds configured" || line == "pod/one configured",
            "{again}"
        );
    }
    assert_eq!(versions(&server), before, "nothing was written");
    assert_eq!(server.get_json(&["deploy", "web"])["metadata"]["generation"], 1);
    assert_eq!(server.get_json(&["svc", "web"])["spec"]["clusterIP"], ip, "an update keeps the ClusterIP");
    // A replace without the allocated values keeps them (kube-apiserver's patchAllocatedValues).
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: web-np}\nspec:\n  type: NodePort\n  selector: {app: web}\n  ports: [{port: 8080, targetPort: http}]\n";
    let out = server.kubectl_with_input(&["replace", "-f", "-"], Some(svc));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let after = server.get_json(&["svc", "web-np"]);
    assert_eq!(after["spec"]["clusterIP"], np["spec"]["clusterIP"]);
    assert_eq!(after["spec"]["ports"][0]["nodePort"], node_port);
}

/// kubectl's generators send protobuf bodies; every built-in kind is read (k8s-pb) and the
/// objects read back defaulted, with this kubectl and two others from the machine image.
#[test]
fn generators_send_protobuf_and_objects_read_back_defaulted() {
    let mut server = ApiServerProcess::start(&[]);
    let versions = [
        ("default", None),
        ("1.27", Some(krust_tests::other_kubectl("1.27"))),
        ("1.33", Some(krust_tests::other_kubectl("1.33"))),
    ];
    for (version, binary) in versions {
        if let Some(binary) = binary {
            server.use_kubectl(binary);
        }
        let ns = format!("v{}", version.replace('.', ""));
        server.ok(&["create", "namespace", &ns]);
        let n = ["-n", ns.as_str()];
        let run = |args: &[&str]| {
            // The namespace first: after `--` it would be the container's argument.
            let mut all = n.to_vec();
            all.extend_from_slice(args);
            let out = server.ok(&all);
            assert!(out.contains("created") || out.contains("exposed"), "kubectl {version} {args:?}: {out}");
        };
        run(&["create", "deployment", "web", "--image=nginx"]);
        run(&["create", "job", "once", "--image=busybox", "--", "echo", "hi"]);
        run(&["create", "cronjob", "nightly", "--image=busybox", "--schedule=0 1 * * *"]);
        run(&["create", "service", "clusterip", "db", "--tcp=5432:5432"]);
        run(&["create", "service", "nodeport", "edge", "--tcp=80:8080"]);
        run(&["run", "one", "--image=nginx:1.27", "--port=80", "--labels=app=one", "--env=MODE=test"]);
        run(&["expose", "deployment", "web", "--port=80", "--target-port=8080"]);
        run(&["create", "role", "reader", "--verb=get,list", "--resource=pods"]);
        run(&["create", "rolebinding", "reader", "--role=reader", "--user=alice"]);
        run(&["create", "poddisruptionbudget", "web", "--selector=app=web", "--min-available=1"]);
        run(&["create", "configmap", "settings", "--from-literal=a=1"]);
        run(&["create", "secret", "generic", "creds", "--from-literal=k=v"]);

        // What `kubectl get deploy web -o yaml` shows: the defaults kube-apiserver applies.
        let mut get = vec!["get", "deploy", "web", "-o", "yaml"];
        get.extend_from_slice(&n);
        let yaml = server.ok(&get);
        for line in [
            "progressDeadlineSeconds: 600",
            "revisionHistoryLimit: 10",
            "replicas: 1",
            "type: RollingUpdate",
            "maxSurge: 25%",
            "terminationMessagePath: /dev/termination-log",
            "imagePullPolicy: Always",
            "restartPolicy: Always",
            "dnsPolicy: ClusterFirst",
            "schedulerName: default-scheduler",
            "terminationGracePeriodSeconds: 30",
        ] {
            assert!(yaml.contains(line), "kubectl {version}: no {line:?} in\n{yaml}");
        }
        let get = |what: &[&str]| {
            let mut all = what.to_vec();
            all.extend_from_slice(&n);
            server.get_json(&all)
        };
        let deploy = get(&["deploy", "web"]);
        assert_eq!(deploy["spec"]["selector"]["matchLabels"]["app"], "web");
        assert_eq!(deploy["spec"]["template"]["spec"]["containers"][0]["image"], "nginx");
        assert!(deploy["metadata"].get("creationTimestamp").and_then(|t| t.as_str()).is_some());

        let job = get(&["job", "once"]);
        let c = &job["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["command"], serde_json::json!(["echo", "hi"]), "{job}");
        assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
        assert_eq!(job["spec"]["backoffLimit"], 6);
        let cron = get(&["cronjob", "nightly"]);
        assert_eq!(cron["spec"]["schedule"], "0 1 * * *");
        assert_eq!(cron["spec"]["concurrencyPolicy"], "Allow");

        let db = get(&["svc", "db"]);
        assert_eq!(
            db["spec"]["ports"][0],
            serde_json::json!({"name": "5432-5432", "port": 5432, "protocol": "TCP", "targetPort": 5432})
        );
        assert!(db["spec"]["clusterIP"].as_str().unwrap().starts_with("10.96."), "{db}");
        let edge = get(&["svc", "edge"]);
        assert_eq!(edge["spec"]["type"], "NodePort");
        assert!(edge["spec"]["ports"][0]["nodePort"].as_i64().is_some_and(|p| p >= 30000), "{edge}");
        let web = get(&["svc", "web"]);
        assert_eq!(web["spec"]["selector"], serde_json::json!({"app": "web"}));
        assert_eq!(web["spec"]["ports"][0]["targetPort"], 8080);

        let pod = get(&["pod", "one"]);
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["ports"][0], serde_json::json!({"containerPort": 80, "protocol": "TCP"}));
        assert_eq!(c["env"][0], serde_json::json!({"name": "MODE", "value": "test"}));
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(pod["metadata"]["labels"]["app"], "one");

        let role = get(&["role", "reader"]);
        assert_eq!(
            role["rules"],
            serde_json::json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}])
        );
        let binding = get(&["rolebinding", "reader"]);
        assert_eq!(binding["roleRef"]["name"], "reader");
        assert_eq!(binding["subjects"][0]["name"], "alice");
        let pdb = get(&["pdb", "web"]);
        assert_eq!(pdb["spec"]["minAvailable"], 1, "an int-or-string read as an int");
        let secret = get(&["secret", "creds"]);
        assert_eq!(secret["data"]["k"], "dg==");
    }
}

/// The Python `kubernetes` client: typed writes read back with the server's defaults, a custom
/// resource with its schema's defaults and CEL rules (plain and transition), a watch.
#[test]
fn the_python_client_sees_defaults_and_validation_rules() {
    let server = ApiServerProcess::start(&[]);
    let out = std::process::Command::new("python3")
        .arg(krust_tests::repo().join("tests/python/interop.py"))
        .arg(server.kubeconfig())
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for check in [
        "namespace label",
        "deployment defaults",
        "secret stringData",
        "service defaults",
        "custom resource defaults",
        "cel rule",
        "cel transition rule",
        "watch",
    ] {
        assert!(stdout.lines().any(|l| l == format!("ok {check}")), "no {check:?} in\n{stdout}");
    }
}

/// A CRD's `default:`s and `x-kubernetes-validations` as kubectl sees them.
#[test]
fn crd_defaults_and_validation_rules_through_kubectl() {
    let server = ApiServerProcess::start(&[]);
    let crd = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: websites.example.org}
spec:
  group: example.org
  scope: Namespaced
  names: {plural: websites, singular: website, kind: Website}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - {rule: "self.minReplicas <= self.replicas", message: "replicas must be at least minReplicas"}
            - {rule: "self.image == oldSelf.image", message: "image is immutable", reason: FieldValueForbidden, fieldPath: .image}
            properties:
              image: {type: string}
              replicas: {type: integer, default: 2}
              minReplicas: {type: integer, default: 1}
              tls:
                type: object
                default: {}
                properties:
                  enabled: {type: boolean, default: true}
"#;
    server.apply(crd, &[]);
    server.ok(&["wait", "--for=condition=Established", "crd/websites.example.org", "--timeout=10s"]);
    server.apply(
        "apiVersion: example.org/v1\nkind: Website\nmetadata: {name: blog}\nspec: {image: nginx}\n",
        &[],
    );
    let site = server.get_json(&["website", "blog"]);
    assert_eq!(
        site["spec"],
        serde_json::json!({"image": "nginx", "replicas": 2, "minReplicas": 1, "tls": {"enabled": true}})
    );
    let bad = "apiVersion: example.org/v1\nkind: Website\nmetadata: {name: bad}\nspec: {image: nginx, replicas: 1, minReplicas: 3}\n";
    let out = server.kubectl_with_input(&["apply", "-f", "-"], Some(bad));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            r#"The Website "bad" is invalid: spec: Invalid value: "object": replicas must be at least minReplicas"#
        ),
        "{stderr}"
    );
    let out =
        server.kubectl(&["patch", "website", "blog", "--type=merge", "-p", r#"{"spec":{"image":"httpd"}}"#]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(r#"The Website "blog" is invalid: spec.image: Forbidden: image is immutable"#),
        "{stderr}"
    );
    // Other changes go through; the rule sees old and new.
    server.ok(&["patch", "website", "blog", "--type=merge", "-p", r#"{"spec":{"replicas":5}}"#]);
    // A rule that does not compile refuses the CRD.
    let broken = crd
        .replace("self.minReplicas <= self.replicas", "self.minReplicas <=")
        .replace("websites", "pages")
        .replace("Website", "Page")
        .replace("website", "page");
    let out = server.kubectl_with_input(&["apply", "-f", "-"], Some(&broken));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("x-kubernetes-validations[0].rule: Invalid value")
            && stderr.contains("compilation failed"),
        "{stderr}"
    );
}

/// `kubectl explain` (OpenAPI v3) for a CRD and for built-in kinds, with two kubectl versions.
#[test]
fn explain_reads_openapi_v3_of_crds_and_built_in_kinds() {
    let mut server = ApiServerProcess::start(&[]);
    server.apply(CRD, &[]);
    server.ok(&["wait", "--for=condition=Established", "crd/websites.example.org", "--timeout=10s"]);
    for binary in [None, Some(krust_tests::other_kubectl("1.27"))] {
        if let Some(binary) = binary {
            server.use_kubectl(binary);
        }
        let spec = server.ok(&["explain", "websites.spec"]);
        assert!(spec.contains("KIND:       Website") && spec.contains("GROUP:      example.org"), "{spec}");
        assert!(spec.contains("image\t<string> -required-"), "{spec}");
        assert!(spec.contains("replicas\t<integer>"), "{spec}");
        let site = server.ok(&["explain", "website.metadata.labels"]);
        assert!(site.contains("map[string]string"), "{site}");
        let strategy = server.ok(&["explain", "deployment.spec.strategy.rollingUpdate.maxSurge"]);
        assert!(strategy.contains("GROUP:      apps") && strategy.contains("maxSurge"), "{strategy}");
        assert!(strategy.contains("The maximum number of pods that can be scheduled"), "{strategy}");
        let ports = server.ok(&["explain", "pods.spec.containers.ports"]);
        assert!(ports.contains("<[]ContainerPort>") && ports.contains("containerPort\t<integer>"), "{ports}");
        let out = server.kubectl(&["explain", "websites.spec.nope"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains(r#"field "nope" does not exist"#));
    }
}

/// What a controller records through either Events API, as `kubectl events`, `kubectl describe`
/// and `kubectl get events` show it (krust's recorder writes events.k8s.io/v1 with a series;
/// a client-go `tools/record`-style core/v1 Event with count and timestamps).
#[test]
fn kubectl_events_and_describe_show_events_of_both_apis() {
    use krust_runtime::events::{Event, EventBroadcaster};
    let server = ApiServerProcess::start(&[]);
    server.apply(DEPLOYMENT, &[]);
    let deploy = server.get_json(&["deploy", "web"]);
    let uid = deploy["metadata"]["uid"].as_str().unwrap().to_string();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = krust_client::Config::from_kubeconfig(server.kubeconfig()).unwrap();
        let clientset = krust_client::Clientset::new(&config).unwrap();
        let web: k8s_openapi::api::apps::v1::Deployment =
            clientset.apps_v1().deployments("default").get("web", &Default::default()).await.unwrap();
        let broadcaster = EventBroadcaster::new(clientset.clone());
        let recorder = broadcaster.recorder("example.org/website", "website-0");
        for _ in 0..3 {
            recorder.publish_for(&web, Event::normal("Reconciled", "Reconcile").note("reconciled web"));
        }
        for _ in 0..300 {
            let listed = clientset.events_v1().events("default").list(&Default::default()).await.unwrap();
            if listed.items.iter().any(|e| e.series.as_ref().is_some_and(|s| s.count == 3)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the recorder's series never reached 3");
    });
    let core = format!(
        r#"apiVersion: v1
kind: Event
metadata: {{name: web.scaled}}
involvedObject: {{apiVersion: apps/v1, kind: Deployment, name: web, namespace: default, uid: {uid}}}
reason: ScalingReplicaSet
message: Scaled up replica set web-1 to 2
type: Warning
source: {{component: deployment-controller}}
firstTimestamp: "2026-01-01T00:00:00Z"
lastTimestamp: "2026-01-01T00:00:05Z"
count: 2
"#
    );
    server.apply(&core, &[]);

    let events = server.ok(&["events", "--for", "deployment/web"]);
    assert!(events.contains("LAST SEEN") && events.contains("Deployment/web"), "{events}");
    assert!(
        events.contains("Reconciled") && events.contains("reconciled web") && events.contains("(x3 over"),
        "{events}"
    );
    assert!(events.contains("ScalingReplicaSet") && events.contains("(x2 over"), "{events}");
    let warnings = server.ok(&["events", "--types=Warning"]);
    assert!(warnings.contains("ScalingReplicaSet") && !warnings.contains("Reconciled"), "{warnings}");

    let describe = server.ok(&["describe", "deployment", "web"]);
    let section = describe.split("Events:").nth(1).unwrap_or_default();
    assert!(
        section.contains("Type") && section.contains("From") && section.contains("Message"),
        "{describe}"
    );
    assert!(section.contains("Normal   Reconciled") || section.contains("Normal  Reconciled"), "{section}");
    assert!(section.contains("example.org/website") && section.contains("(x3 over"), "{section}");
    assert!(
        section.contains("deployment-controller") && section.contains("Scaled up replica set web-1 to 2"),
        "{section}"
    );

    for resource in ["events", "events.v1.events.k8s.io"] {
        let wide = server.ok(&["get", resource, "-o", "wide"]);
        let header = wide.lines().next().unwrap_or_default();
        for column in [
            "LAST SEEN",
            "TYPE",
            "REASON",
            "OBJECT",
            "SUBOBJECT",
            "SOURCE",
            "MESSAGE",
            "FIRST SEEN",
            "COUNT",
            "NAME",
        ] {
            assert!(header.contains(column), "{resource}: no {column} in\n{wide}");
        }
        assert!(wide.contains("example.org/website, website-0"), "{resource}:\n{wide}");
        assert!(wide.contains("deployment/web"), "{resource}:\n{wide}");
    }
}

/// Server-side field validation, which kubectl asks for once OpenAPI v3 lists it: unknown
/// fields refuse a strict apply/create, come back as warnings under `--validate=warn`, and are
/// not checked under `--validate=false`; CRDs are checked against their schema.
#[test]
fn unknown_fields_are_refused_or_warned_as_kubectl_asks() {
    let server = ApiServerProcess::start(&[]);
    server.apply(CRD, &[]);
    server.ok(&["wait", "--for=condition=Established", "crd/websites.example.org", "--timeout=10s"]);
    let typo = DEPLOYMENT
        .replace("        image: nginx:1.25", "        image: nginx:1.25\n        imagePolicy: Always");
    let out = server.kubectl_with_input(&["apply", "-f", "-"], Some(&typo));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a strict apply with an unknown field is refused");
    assert!(
        stderr.contains(
            r#"strict decoding error: unknown field "spec.template.spec.containers[0].imagePolicy""#
        ),
        "{stderr}"
    );
    let out = server.kubectl_with_input(&["create", "-f", "-", "--validate=warn"], Some(&typo));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(r#"Warning: unknown field "spec.template.spec.containers[0].imagePolicy""#),
        "{stderr}"
    );
    // An update through kubectl apply's strategic merge patch is checked too.
    let relabel = DEPLOYMENT.replace("  replicas: 2", "  replicas: 2\n  paused2: true");
    let out = server.kubectl_with_input(&["apply", "-f", "-"], Some(&relabel));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(r#"unknown field "spec.paused2""#));
    server.kubectl_with_input(&["apply", "-f", "-", "--validate=false"], Some(&relabel));
    // Custom resources against their schema.
    let site = "apiVersion: example.org/v1\nkind: Website\nmetadata: {name: blog}\nspec: {image: nginx, color: red}\n";
    let out = server.kubectl_with_input(&["apply", "-f", "-"], Some(site));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(r#"unknown field "spec.color""#));
    let ok = "apiVersion: example.org/v1\nkind: Website\nmetadata: {name: blog}\nspec: {image: nginx}\nstatus: {anything: [1]}\n";
    server.apply(ok, &[]);
    server.apply(ok, &["--server-side"]);
}
