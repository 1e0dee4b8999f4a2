//! The example operator: a `Website` custom resource (image, replicas, page content) that the
//! operator turns into a ConfigMap (the page), a Deployment (serving it) and a Service, owned by
//! the Website so that they are garbage-collected with it, repaired when someone else changes
//! or deletes them, and reported in the Website's status conditions and in events.
//!
//! Its webhooks ([`webhooks`]): a validator (an image, at most [`MAX_REPLICAS`] replicas), a
//! defaulter (a page naming the site when none is given) and the conversion between `v1` (the
//! storage version, the hub the reconciler reads) and [`v2`] (the image split into repository
//! and tag).

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec},
        core::v1::{
            ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, PodSpec, PodTemplateSpec, Service,
            ServicePort, ServiceSpec, Volume, VolumeMount,
        },
    },
    apimachinery::pkg::{
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};
use krust::{
    TerminalError,
    prelude::*,
    runtime::{
        controller::helpers::{
            self, FinalizerError, FinalizerEvent, OperationResult, finalizer, set_controller_reference,
        },
        webhook::{
            Converter, Defaulter, Denial, Validator, Warnings, WebhookEndpoint, WebhookServer,
            WebhookServerBuilder, WebhookSpec, set_conversion_webhook, webhook_configurations,
        },
    },
};

/// The operator's field manager (server-side apply) and event source.
pub const MANAGER: &str = "website-operator";
/// The finalizer the operator puts on every Website.
pub const FINALIZER: &str = "example.krust.dev/cleanup";
/// The most replicas a Website may ask for (its validating webhook refuses more).
pub const MAX_REPLICAS: i32 = 10;

/// What a Website should be.
#[krust::custom_resource(
    group = "example.krust.dev",
    version = "v1",
    kind = "Website",
    namespaced,
    status = "WebsiteStatus",
    shortname = "ws",
    printcolumn = r#"{"name":"Image","type":"string","jsonPath":".spec.image"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebsiteSpec {
    /// The web server image (it must serve /usr/share/nginx/html).
    pub image: String,
    /// How many replicas serve it (0 to 10).
    pub replicas: i32,
    /// The page (default: a heading naming the site, set by the defaulting webhook).
    #[serde(default)]
    pub content: String,
}

/// What the operator observed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebsiteStatus {
    /// The generation last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions (`Ready`).
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// The operator's errors.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// A request failed.
    #[error(transparent)]
    Client(#[from] krust::Error),
    /// The finalizer step failed.
    #[error(transparent)]
    Finalizer(#[from] Box<FinalizerError<OperatorError>>),
    /// The Website cannot be turned into objects (not retried).
    #[error("invalid Website: {0}")]
    Invalid(#[source] TerminalError),
    /// An owner reference could not be set.
    #[error("owner reference: {0}")]
    Owner(#[from] krust::runtime::controller::helpers::OwnerReferenceError),
}

fn labels(site: &Website) -> BTreeMap<String, String> {
    [
        ("app.kubernetes.io/name".to_string(), site.name_any()),
        ("app.kubernetes.io/managed-by".to_string(), MANAGER.to_string()),
    ]
    .into()
}

fn owned_meta(site: &Website, name: String) -> Result<ObjectMeta, OperatorError> {
    let mut meta = ObjectMeta {
        name: Some(name),
        namespace: site.metadata.namespace.clone(),
        labels: Some(labels(site)),
        ..Default::default()
    };
    set_controller_reference(site, &mut meta)?;
    Ok(meta)
}

/// The ConfigMap holding the page (pure; unit-testable).
pub fn desired_config_map(site: &Website) -> Result<ConfigMap, OperatorError> {
    Ok(ConfigMap {
        metadata: owned_meta(site, format!("{}-content", site.name_any()))?,
        data: Some([("index.html".to_string(), site.spec.content.clone())].into()),
        ..Default::default()
    })
}

/// The Deployment serving the page.
pub fn desired_deployment(site: &Website) -> Result<Deployment, OperatorError> {
    if site.spec.replicas < 0 {
        return Err(OperatorError::Invalid(TerminalError::new(format!(
            "spec.replicas must be 0 or more, not {}",
            site.spec.replicas
        ))));
    }
    let selector = labels(site);
    Ok(Deployment {
        metadata: owned_meta(site, site.name_any())?,
        spec: DeploymentSpec {
            replicas: Some(site.spec.replicas),
            selector: LabelSelector { match_labels: Some(selector.clone()), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(selector), ..Default::default() }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "web".into(),
                        image: Some(site.spec.image.clone()),
                        ports: Some(vec![ContainerPort { container_port: 80, ..Default::default() }]),
                        volume_mounts: Some(vec![VolumeMount {
                            name: "content".into(),
                            mount_path: "/usr/share/nginx/html".into(),
                            read_only: Some(true),
                            ..Default::default()
                        }]),
                        ..Default::default()
                    }],
                    volumes: Some(vec![Volume {
                        name: "content".into(),
                        config_map: Some(ConfigMapVolumeSource {
                            name: format!("{}-content", site.name_any()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        },
        ..Default::default()
    })
}

/// The Service in front of it.
pub fn desired_service(site: &Website) -> Result<Service, OperatorError> {
    Ok(Service {
        metadata: owned_meta(site, site.name_any())?,
        spec: Some(ServiceSpec {
            selector: Some(labels(site)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::Int(80)),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The reconciler.
pub struct WebsiteReconciler;

/// Applies one owned object and says in an event what that did.
async fn apply<K>(ctx: &Context, site: &Website, desired: K) -> Result<(), OperatorError>
where
    K: krust::kube_core::Resource<DynamicType = ()>
        + Clone
        + Serialize
        + krust::serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    // The owned kinds are cached as metadata only (`owns_metadata`): no request when the
    // object is as this operator's last apply left it.
    let result = helpers::apply_owned_metadata(ctx, &desired, MANAGER).await?;
    let what = format!("{} {}", K::kind(&()), desired.meta().name.as_deref().unwrap_or(""));
    let event = match result {
        OperationResult::Created => Event::normal("Created", "Reconcile").note(format!("created {what}")),
        OperationResult::Updated => {
            Event::normal("Updated", "Reconcile").note(format!("brought {what} back in line"))
        }
        OperationResult::Unchanged => return Ok(()),
    };
    ctx.recorder().publish_for(site, event);
    Ok(())
}

impl WebsiteReconciler {
    async fn apply_all(&self, site: &Website, ctx: &Context) -> Result<Action, OperatorError> {
        let ns = site.metadata.namespace.clone().unwrap_or_default();
        let name = site.name_any();
        apply(ctx, site, desired_config_map(site)?).await?;
        apply(ctx, site, desired_deployment(site)?).await?;
        apply(ctx, site, desired_service(site)?).await?;
        // Status: written only when it changes (a status write is itself an event).
        let generation = site.metadata.generation;
        let message =
            format!("{} replica(s) of {} behind Service {name}", site.spec.replicas, site.spec.image);
        let mut status = site.status.clone().unwrap_or_default();
        let ready = Condition::new("Ready", true, "Reconciled", message).observed(generation);
        let changed = set_condition(&mut status.conditions, ready);
        if changed || status.observed_generation != generation {
            status.observed_generation = generation;
            helpers::patch_status(&ctx.client::<Website>(Some(&ns)), &name, &status).await?;
        }
        Ok(Action::requeue_after(Duration::from_secs(300)))
    }
}

#[async_trait]
impl Reconciler for WebsiteReconciler {
    type Error = OperatorError;

    async fn reconcile(&self, req: Request, ctx: &Context) -> Result<Action, OperatorError> {
        let Some(site) = ctx.lister::<Website>().namespace(&req.namespace).get(&req.name)? else {
            return Ok(Action::done()); // deleted: its objects are garbage-collected
        };
        let client = ctx.client::<Website>(Some(&req.namespace));
        finalizer(&client, FINALIZER, (*site).clone(), |event| async move {
            match event {
                FinalizerEvent::Apply(site) => self.apply_all(&site, ctx).await,
                FinalizerEvent::Cleanup(site) => {
                    // Nothing outside the cluster to clean up; the owned objects go with the
                    // Website. Say so.
                    ctx.recorder().publish_for(
                        &site,
                        Event::normal("Deleting", "Cleanup").note("owned objects are garbage-collected"),
                    );
                    Ok(Action::done())
                }
            }
        })
        .await
        .map_err(|e| OperatorError::Finalizer(Box::new(e)))
    }
}

/// The controller: Websites, and the three kinds of objects they own — watched through
/// metadata-only informers, since the reconciler never reads their specs (the cache holds
/// their metadata, not the Deployments' pod templates).
pub fn controller() -> Controller {
    Controller::for_::<Website>()
        .owns_metadata::<Deployment>()
        .owns_metadata::<Service>()
        .owns_metadata::<ConfigMap>()
        .concurrency(2)
        .named(MANAGER)
        .build(WebsiteReconciler)
}

/// `v2` of the Website: the image split into repository and tag. Served beside `v1` (the
/// storage version); the conversion webhook turns one into the other without loss.
pub mod v2 {
    use super::{Website as V1, WebsiteSpec as V1Spec, WebsiteStatus};
    use krust::prelude::*;

    /// What a Website should be (v2).
    #[krust::custom_resource(
        group = "example.krust.dev",
        version = "v2",
        kind = "Website",
        namespaced,
        status = "WebsiteStatus",
        shortname = "ws",
        printcolumn = r#"{"name":"Repository","type":"string","jsonPath":".spec.image.repository"}"#,
        printcolumn = r#"{"name":"Tag","type":"string","jsonPath":".spec.image.tag"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
    )]
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct WebsiteSpec {
        /// The web server image.
        pub image: Image,
        /// How many replicas serve it (0 to 10).
        pub replicas: i32,
        /// The page (default: a heading naming the site).
        #[serde(default)]
        pub content: String,
    }

    /// An image reference, split.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Image {
        /// The repository (`nginx`, `registry.example.com:5000/team/web`), or a whole
        /// reference by digest (`nginx@sha256:…`).
        pub repository: String,
        /// The tag (none: the registry's `latest`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tag: Option<String>,
    }

    impl Image {
        /// Splits `nginx:1.27` into `nginx` and `1.27` (a `:` after the last `/`; references
        /// by digest stay whole).
        pub fn parse(image: &str) -> Image {
            let last = image.rfind('/').map_or(0, |i| i + 1);
            match image[last..].rfind(':') {
                Some(colon) if !image.contains('@') => Image {
                    repository: image[..last + colon].to_string(),
                    tag: Some(image[last + colon + 1..].to_string()),
                },
                _ => Image { repository: image.to_string(), tag: None },
            }
        }

        /// The reference again (`repository:tag`).
        pub fn reference(&self) -> String {
            match &self.tag {
                Some(tag) => format!("{}:{tag}", self.repository),
                None => self.repository.clone(),
            }
        }
    }

    impl From<V1> for Website {
        fn from(v1: V1) -> Website {
            Website {
                metadata: v1.metadata,
                spec: WebsiteSpec {
                    image: Image::parse(&v1.spec.image),
                    replicas: v1.spec.replicas,
                    content: v1.spec.content,
                },
                status: v1.status,
            }
        }
    }

    impl From<Website> for V1 {
        fn from(v2: Website) -> V1 {
            V1 {
                metadata: v2.metadata,
                spec: V1Spec {
                    image: v2.spec.image.reference(),
                    replicas: v2.spec.replicas,
                    content: v2.spec.content,
                },
                status: v2.status,
            }
        }
    }
}

/// The Website's validating webhook: an image is required and the replicas stay within
/// 0..=[`MAX_REPLICAS`]; an image without a tag is allowed with a warning.
pub struct WebsiteValidator;

impl WebsiteValidator {
    fn check(site: &Website) -> Result<Warnings, Denial> {
        if site.spec.image.trim().is_empty() {
            return Err(Denial::invalid("spec.image", "an image is required"));
        }
        if !(0..=MAX_REPLICAS).contains(&site.spec.replicas) {
            return Err(Denial::invalid(
                "spec.replicas",
                format!("must be between 0 and {MAX_REPLICAS}, not {}", site.spec.replicas),
            ));
        }
        let mut warnings = Warnings::new();
        if v2::Image::parse(&site.spec.image).tag.is_none() && !site.spec.image.contains('@') {
            warnings
                .push(format!("spec.image {:?} has no tag: whatever is latest is pulled", site.spec.image));
        }
        Ok(warnings)
    }
}

#[async_trait]
impl Validator<Website> for WebsiteValidator {
    async fn validate_create(&self, site: &Website) -> Result<Warnings, Denial> {
        Self::check(site)
    }

    async fn validate_update(&self, _old: &Website, site: &Website) -> Result<Warnings, Denial> {
        Self::check(site)
    }
}

/// The Website's defaulting webhook: a Website without content gets a page naming it.
pub struct WebsiteDefaulter;

#[async_trait]
impl Defaulter<Website> for WebsiteDefaulter {
    async fn default(&self, site: &mut Website) -> Result<(), Denial> {
        if site.spec.content.trim().is_empty() {
            site.spec.content = format!("<h1>{}</h1>", site.name_any());
        }
        Ok(())
    }
}

/// The Website's webhooks on `server`: the validator and the defaulter (registered for `v1`;
/// requests through `v2` reach them converted, by matchPolicy Equivalent) and the `v1`/`v2`
/// conversion at `/convert`.
pub fn webhooks(server: WebhookServerBuilder) -> WebhookServerBuilder {
    server
        .validator::<Website, _>(WebsiteValidator)
        .defaulter::<Website, _>(WebsiteDefaulter)
        .conversion(Converter::<Website>::hub().spoke::<v2::Website>())
}

/// The Website's webhooks served on this machine (127.0.0.1, a free port) with a certificate
/// made for it, for an API server on this machine (the embedded one): hand `server` to the
/// manager, and give `endpoint` and `ca` to [`install_crd`] and [`register_webhooks`].
pub struct LocalWebhooks {
    /// The bound webhook server (it answers once the manager runs it).
    pub server: WebhookServer,
    /// Its URL.
    pub endpoint: WebhookEndpoint,
    /// Its webhooks.
    pub specs: Vec<WebhookSpec>,
    /// The CA (PEM) that signed its certificate.
    pub ca: String,
}

impl LocalWebhooks {
    /// Writes a certificate into `dir` and binds the server.
    pub fn start(dir: &std::path::Path) -> anyhow::Result<LocalWebhooks> {
        let ca = krust_apiserver::write_webhook_certificate(dir)?;
        let builder = webhooks(WebhookServer::builder().bind(([127, 0, 0, 1], 0).into()).cert_dir(dir));
        let specs = builder.webhooks();
        let server = builder.build()?;
        let port = server.local_addr().map(|a| a.port()).unwrap_or_default();
        let endpoint = WebhookEndpoint::Url(format!("https://127.0.0.1:{port}"));
        Ok(LocalWebhooks { server, endpoint, specs, ca })
    }
}

/// Registers `specs`, served at `endpoint` and verified with `ca` (PEM), as the Mutating- and
/// ValidatingWebhookConfiguration `website-webhooks`. From then on every Website write goes
/// through them: their server must be running, or bound and about to run.
pub async fn register_webhooks(
    clientset: &krust::Clientset,
    specs: &[WebhookSpec],
    endpoint: &WebhookEndpoint,
    ca: &str,
) -> anyhow::Result<()> {
    let (mutating, validating) =
        webhook_configurations("website-webhooks", specs, endpoint, Some(ca.as_bytes()));
    let admission = clientset.admissionregistration_v1();
    let apply = PatchOptions::apply(MANAGER).force();
    if let Some(m) = mutating {
        admission.mutating_webhook_configurations().apply(&m, &apply).await?;
    }
    if let Some(v) = validating {
        admission.validating_webhook_configurations().apply(&v, &apply).await?;
    }
    Ok(())
}

/// The CRD, as the cluster should have it: `v1` (storage) and `v2`. Its conversion is left to
/// where it is installed: [`install_crd`] points it at a webhook server, the chart at its
/// Service.
pub fn crd() -> anyhow::Result<
    krust::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
> {
    Ok(krust::kube_core::crd::merge_crds(vec![Website::crd(), v2::Website::crd()], "v1")?)
}

/// Installs (or updates) the CRD and waits until it is established; with `conversion`, its
/// `v1`/`v2` conversion goes through that webhook server (`endpoint`, `caBundle` PEM); without
/// one only `v1` is served (the chart does the same when its webhooks are off).
pub async fn install_crd(
    clientset: &krust::Clientset,
    conversion: Option<(&WebhookEndpoint, &[u8])>,
) -> anyhow::Result<()> {
    let crds = clientset.apiextensions_v1().custom_resource_definitions();
    let mut crd = crd()?;
    match conversion {
        Some((endpoint, ca)) => set_conversion_webhook(&mut crd, endpoint, "/convert", Some(ca)),
        None => {
            for version in crd.spec.versions.iter_mut().filter(|v| !v.storage) {
                version.served = false;
            }
        }
    }
    crds.apply(&crd, &PatchOptions::apply(MANAGER).force()).await?;
    let name = format!("websites.{}", Website::group(&()));
    helpers::wait_for(
        &crds,
        &name,
        |c: Option<&krust::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>| {
            c.and_then(|c| c.status.as_ref())
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"))
        },
        Duration::from_secs(30),
    )
    .await?;
    Ok(())
}

/// A sample Website.
pub fn sample(name: &str) -> Website {
    let mut site = Website::new(
        name,
        WebsiteSpec { image: "nginx:1.27".into(), replicas: 2, content: "<h1>Hello from krust</h1>".into() },
    );
    site.metadata.namespace = Some("default".into());
    site
}

#[cfg(test)]
mod tests {
    //! The reconciler alone, against an in-process API server (krust::testing): no manager, one
    //! reconcile called by hand, then what it wrote is read back.

    use krust::{k8s_openapi::api::core::v1::Service, testing::TestEnv};

    use super::*;

    #[tokio::test]
    async fn one_reconcile_writes_the_owned_objects_and_the_status() {
        let env = TestEnv::start().await.unwrap();
        env.install_crd::<Website>().await.unwrap();
        env.create(&sample("unit")).await.unwrap();

        // The first reconcile puts the finalizer on; the next one, once the cache has the
        // Website with it, does the work.
        let started = std::time::Instant::now();
        let action = env.reconcile(&WebsiteReconciler, Request::new("default", "unit")).await.unwrap();
        eprintln!("first reconcile (its informers started and synced): {:?}", started.elapsed());
        assert_eq!(action, Action::done());
        let site: Website = env.catch_up(Some("default"), "unit").await.unwrap();
        assert_eq!(site.metadata.finalizers.as_deref(), Some(&[FINALIZER.to_string()][..]));
        let started = std::time::Instant::now();
        let action = env.reconcile(&WebsiteReconciler, Request::new("default", "unit")).await.unwrap();
        eprintln!("second reconcile: {:?}", started.elapsed());
        assert_eq!(action, Action::requeue_after(Duration::from_secs(300)));

        let clients = env.clientset();
        let deployment =
            clients.apps_v1().deployments("default").get("unit", &GetOptions::default()).await.unwrap();
        assert_eq!(deployment.spec.replicas, Some(2));
        let owner = &deployment.metadata.owner_references.as_deref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Website", site.metadata.uid.as_deref().unwrap())
        );
        let page = clients
            .core_v1()
            .config_maps("default")
            .get("unit-content", &GetOptions::default())
            .await
            .unwrap();
        assert_eq!(page.data.unwrap()["index.html"], site.spec.content);
        let service: Service =
            clients.core_v1().services("default").get("unit", &GetOptions::default()).await.unwrap();
        assert_eq!(service.metadata.labels, deployment.metadata.labels);

        let site = env
            .clientset()
            .typed::<Website>(Some("default"))
            .get("unit", &GetOptions::default())
            .await
            .unwrap();
        assert_eq!(site.metadata.finalizers.as_deref(), Some(&[FINALIZER.to_string()][..]));
        let status = site.status.unwrap();
        assert_eq!(status.observed_generation, site.metadata.generation);
        assert!(is_condition_true(&status.conditions, "Ready"), "{:?}", status.conditions);
    }

    /// Write requests the server received so far.
    fn writes(env: &TestEnv) -> u64 {
        ["POST", "PUT", "PATCH", "DELETE"].iter().map(|m| env.server().request_count(m)).sum()
    }

    #[tokio::test]
    async fn a_reconcile_that_finds_everything_in_place_writes_nothing() {
        let env = TestEnv::start().await.unwrap();
        env.install_crd::<Website>().await.unwrap();
        env.create(&sample("calm")).await.unwrap();
        let request = || Request::new("default", "calm");
        env.reconcile(&WebsiteReconciler, request()).await.unwrap();
        let _: Website = env.catch_up(Some("default"), "calm").await.unwrap();
        env.reconcile(&WebsiteReconciler, request()).await.unwrap();
        let settle = || async {
            let _: Website = env.catch_up(Some("default"), "calm").await.unwrap();
            let _: Deployment = env.catch_up(Some("default"), "calm").await.unwrap();
            let _: Service = env.catch_up(Some("default"), "calm").await.unwrap();
            let _: ConfigMap = env.catch_up(Some("default"), "calm-content").await.unwrap();
            // The events of the last reconcile go out in the background.
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        settle().await;

        // Everything is in place: reconciling again (as after every relist) writes nothing.
        let before = writes(&env);
        for _ in 0..3 {
            env.reconcile(&WebsiteReconciler, request()).await.unwrap();
        }
        assert_eq!(writes(&env) - before, 0, "a reconcile with nothing to do wrote");

        // Someone scales the Deployment: one apply brings it back, then quiet again.
        let deployments = env.clientset().apps_v1().deployments("default");
        deployments
            .patch(
                "calm",
                PatchType::Merge,
                &serde_json::json!({"spec": {"replicas": 7}}),
                &PatchOptions::default(),
            )
            .await
            .unwrap();
        let _: Deployment = env.catch_up(Some("default"), "calm").await.unwrap();
        let before = writes(&env);
        env.reconcile(&WebsiteReconciler, request()).await.unwrap();
        let deployment = deployments.get("calm", &GetOptions::default()).await.unwrap();
        assert_eq!(deployment.spec.replicas, Some(2));
        settle().await;
        assert!(writes(&env) - before <= 2, "one apply and its event");
        let before = writes(&env);
        env.reconcile(&WebsiteReconciler, request()).await.unwrap();
        assert_eq!(writes(&env) - before, 0);

        // The server restarts (objects kept, watches and history lost): the caches relist, and
        // the reconciles that follow still find nothing to do.
        env.server().restart();
        settle().await;
        let before = writes(&env);
        env.reconcile(&WebsiteReconciler, request()).await.unwrap();
        assert_eq!(writes(&env) - before, 0, "a relist made the operator write");
    }

    #[test]
    fn v1_and_v2_convert_without_loss() {
        for image in [
            "nginx",
            "nginx:1.27",
            "registry.example.com:5000/team/web",
            "registry.example.com:5000/team/web:v2",
            "nginx@sha256:0123abcd",
        ] {
            let mut v1 = sample("round");
            v1.spec.image = image.into();
            let v2 = v2::Website::from(v1.clone());
            let back = Website::from(v2.clone());
            assert_eq!(
                (&back.metadata, &back.spec),
                (&v1.metadata, &v1.spec),
                "{image} -> {:?}",
                v2.spec.image
            );
        }
        let split = v2::Image::parse("registry.example.com:5000/team/web:v2");
        assert_eq!(
            (split.repository.as_str(), split.tag.as_deref()),
            ("registry.example.com:5000/team/web", Some("v2"))
        );
        assert_eq!(v2::Image::parse("registry.example.com:5000/web").tag, None);
        // Through the converter the webhook serves, metadata and status included.
        let converter = Converter::<Website>::hub().spoke::<v2::Website>();
        let mut site = sample("conv");
        site.status = Some(WebsiteStatus { observed_generation: Some(3), conditions: vec![] });
        let v1 = serde_json::to_value(&site).unwrap();
        let v2 = converter.convert(v1.clone(), "example.krust.dev/v2").unwrap();
        assert_eq!(v2["spec"]["image"], serde_json::json!({"repository": "nginx", "tag": "1.27"}));
        assert_eq!(v2["status"]["observedGeneration"], 3);
        assert_eq!(converter.convert(v2, "example.krust.dev/v1").unwrap(), v1);
    }

    #[tokio::test]
    async fn the_validator_wants_an_image_and_bounded_replicas() {
        let ok = sample("ok");
        assert_eq!(WebsiteValidator.validate_create(&ok).await, Ok(vec![]));
        let mut untagged = sample("untagged");
        untagged.spec.image = "nginx".into();
        let warnings = WebsiteValidator.validate_create(&untagged).await.unwrap();
        assert!(warnings[0].contains("has no tag"), "{warnings:?}");
        let mut no_image = sample("no-image");
        no_image.spec.image = " ".into();
        let denial = WebsiteValidator.validate_create(&no_image).await.unwrap_err();
        assert_eq!((denial.code, denial.field.as_deref()), (422, Some("spec.image")));
        for replicas in [-1, MAX_REPLICAS + 1] {
            let mut site = sample("bounds");
            site.spec.replicas = replicas;
            let denial = WebsiteValidator.validate_update(&ok, &site).await.unwrap_err();
            assert_eq!(denial.field.as_deref(), Some("spec.replicas"), "{replicas}");
        }
        let mut most = sample("most");
        most.spec.replicas = MAX_REPLICAS;
        assert!(WebsiteValidator.validate_update(&ok, &most).await.is_ok());
    }

    #[tokio::test]
    async fn the_defaulter_fills_in_a_page_and_keeps_a_given_one() {
        let mut site = sample("plain");
        site.spec.content = String::new();
        WebsiteDefaulter.default(&mut site).await.unwrap();
        assert_eq!(site.spec.content, "<h1>plain</h1>");
        let mut given = sample("given");
        WebsiteDefaulter.default(&mut given).await.unwrap();
        assert_eq!(given.spec.content, sample("given").spec.content);
    }

    #[tokio::test]
    async fn a_website_that_is_gone_is_done() {
        let env = TestEnv::start().await.unwrap();
        env.install_crd::<Website>().await.unwrap();
        let action = env.reconcile(&WebsiteReconciler, Request::new("default", "missing")).await.unwrap();
        assert_eq!(action, Action::done());
    }
}
