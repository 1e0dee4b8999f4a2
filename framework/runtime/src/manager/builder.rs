//! [`ManagerBuilder`] (controller-runtime's `manager.Options`): the settings of a manager, and
//! [`default_identity`] (the leader-election identity).

use super::*;

/// Builds a [`Manager`].
pub struct ManagerBuilder {
    config: Config,
    metrics_addr: Option<String>,
    health_probe_addr: Option<String>,
    secure_metrics: Option<super::SecureMetrics>,
    namespace: Option<String>,
    cache_sync_timeout: Duration,
    graceful_shutdown_timeout: Duration,
    identity: Option<String>,
    strip_managed_fields: bool,
    leader: Option<(String, String)>,
    leader_config: crate::leader::LeaderElectionConfig,
    exit_on_lost_leadership: bool,
    webhook: Option<crate::webhook::WebhookServer>,
    /// The cache's settings per resource and by default (applied to the factory on build).
    cache: Vec<Box<dyn FnOnce(SharedInformerFactory) -> SharedInformerFactory + Send>>,
}

/// What the manager's cache holds of one type (controller-runtime's `cache.ByObject`).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ByObject {
    /// Only objects with these labels (`app=web,tier in (a,b)`).
    pub label_selector: Option<String>,
    /// Only objects with these fields (`metadata.name=x`, `spec.nodeName=n`, `type=...`).
    pub field_selector: Option<String>,
    /// Fields dropped before the object is cached (the type's transform).
    pub drop_fields: Vec<crate::cache::FieldPath>,
    /// The namespaces cached (controller-runtime's `ByObject.Namespaces`): `None`, the
    /// manager's ([`ManagerBuilder::cache_namespaces`]); `Some(vec![])`, every namespace.
    pub namespaces: Option<Vec<String>>,
}

impl ByObject {
    /// Only objects matching this label selector.
    pub fn label_selector(selector: impl Into<String>) -> Self {
        ByObject { label_selector: Some(selector.into()), ..Default::default() }
    }

    /// Also (or only) objects matching this field selector.
    #[must_use]
    pub fn with_field_selector(mut self, selector: impl Into<String>) -> Self {
        self.field_selector = Some(selector.into());
        self
    }

    /// Drops these fields of each object before it is cached.
    #[must_use]
    pub fn with_drop_fields(mut self, paths: Vec<crate::cache::FieldPath>) -> Self {
        self.drop_fields = paths;
        self
    }

    /// Objects in these namespaces only (empty: every namespace), instead of the manager's
    /// [`cache_namespaces`](ManagerBuilder::cache_namespaces).
    #[must_use]
    pub fn with_namespaces<S: Into<String>>(mut self, namespaces: impl IntoIterator<Item = S>) -> Self {
        self.namespaces = Some(namespaces.into_iter().map(Into::into).collect());
        self
    }
}

impl std::fmt::Debug for ManagerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerBuilder")
            .field("metrics_addr", &self.metrics_addr)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl ManagerBuilder {
    /// The defaults (controller-runtime's): metrics on `0.0.0.0:8080`, caches synced within 2
    /// minutes, 30 s of graceful shutdown, managedFields stripped, no leader election.
    pub(super) fn new(config: Config) -> Self {
        ManagerBuilder {
            config,
            metrics_addr: Some("0.0.0.0:8080".into()),
            health_probe_addr: None,
            secure_metrics: None,
            namespace: None,
            cache_sync_timeout: Duration::from_secs(120),
            graceful_shutdown_timeout: Duration::from_secs(30),
            identity: None,
            strip_managed_fields: true,
            leader: None,
            leader_config: crate::leader::LeaderElectionConfig::default(),
            exit_on_lost_leadership: true,
            webhook: None,
            cache: Vec::new(),
        }
    }

    /// What the cache holds of `K` (controller-runtime's `cache.Options.ByObject`): label and
    /// field selectors (only matching objects are listed, watched and cached — every
    /// informer of `K`'s resource, typed, dynamic or metadata-only, and every lister of it
    /// sees only those) and fields to drop. The memory of a cache follows what it holds:
    /// 1,000 matching Secrets out of 100,000 cost what 1,000 do.
    #[must_use]
    pub fn cache_by_object<K>(mut self, by_object: ByObject) -> Self
    where
        K: kube_core::Resource<DynamicType = ()> + 'static,
    {
        self.cache.push(Box::new(move |factory| {
            let mut factory = factory;
            if by_object.label_selector.is_some() || by_object.field_selector.is_some() {
                factory = factory.with_list_options_for_type::<K>(ListOptions {
                    label_selector: by_object.label_selector,
                    field_selector: by_object.field_selector,
                    ..Default::default()
                });
            }
            if !by_object.drop_fields.is_empty() {
                factory = factory.with_drop_fields_for::<K>(by_object.drop_fields);
            }
            if let Some(namespaces) = by_object.namespaces {
                factory = factory.with_namespaces_for_type::<K>(namespaces);
            }
            factory
        }));
        self
    }

    /// Fields every informer drops before caching (controller-runtime's `DefaultTransform`
    /// for the common case; managedFields are dropped already unless
    /// [`strip_managed_fields(false)`](Self::strip_managed_fields)).
    #[must_use]
    pub fn cache_drop_fields(mut self, paths: Vec<crate::cache::FieldPath>) -> Self {
        self.cache.push(Box::new(move |factory| factory.with_drop_fields(paths)));
        self
    }

    /// Runs this webhook server (admission and conversion) on every replica, leader or not
    /// (the API server calls whichever pod its Service picks), from the start until shutdown;
    /// its metrics go into the manager's registry and `/readyz` waits for it to listen.
    #[must_use]
    pub fn webhook_server(mut self, server: crate::webhook::WebhookServer) -> Self {
        self.webhook = Some(server);
        self
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served (default `0.0.0.0:8080`; port 0
    /// picks a free port, see [`Manager::local_addr`]).
    #[must_use]
    pub fn metrics_addr(mut self, addr: impl Into<String>) -> Self {
        self.metrics_addr = Some(addr.into());
        self
    }

    /// Serves `/healthz`, `/livez` and `/readyz` on a server of their own (controller-runtime's
    /// `HealthProbeBindAddress`, `:8081` in Kubebuilder's scaffold), plain HTTP and without
    /// authentication whatever the metrics server does; the metrics server then serves only
    /// `/metrics`. Port 0 picks a free port ([`Manager::probe_addr`]).
    #[must_use]
    pub fn health_probe_addr(mut self, addr: impl Into<String>) -> Self {
        self.health_probe_addr = Some(addr.into());
        self
    }

    /// Serves `/metrics` over HTTPS (`tls.crt` and `tls.key` from the directory, read again when
    /// they change) to callers the API server authenticates (TokenReview) and authorizes to
    /// `get` the path (SubjectAccessReview): Kubebuilder's default since 4.1
    /// (`--metrics-secure`, `filters.WithAuthenticationAndAuthorization`). A scraper needs a
    /// ClusterRole with `nonResourceURLs: ["/metrics"], verbs: ["get"]`; the manager's own
    /// account needs `create` on `tokenreviews` and `subjectaccessreviews`. Probes stay
    /// unauthenticated; put them on [`health_probe_addr`](Self::health_probe_addr) for a
    /// kubelet to reach them over plain HTTP. Unlike controller-runtime, no self-signed
    /// certificate is made when the files are missing: mount one (cert-manager, or a Secret).
    #[must_use]
    pub fn secure_metrics(mut self, secure: super::SecureMetrics) -> Self {
        self.secure_metrics = Some(secure);
        self
    }

    /// Serves no HTTP endpoint.
    #[must_use]
    pub fn without_metrics_server(mut self) -> Self {
        self.metrics_addr = None;
        self
    }

    /// Caches (and so controllers) see one namespace only (default: all).
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Caches (and so controllers) see these namespaces only (controller-runtime's
    /// `cache.Options.DefaultNamespaces`; default: all): each namespaced resource is listed
    /// and watched once per namespace, into one cache whose listers and handlers see them
    /// all. Cluster-scoped types are cached cluster-wide. [`ByObject::with_namespaces`]
    /// overrides it per type. The manager's RBAC needs only these namespaces (Roles, not a
    /// ClusterRole).
    #[must_use]
    pub fn cache_namespaces<S: Into<String>>(mut self, namespaces: impl IntoIterator<Item = S>) -> Self {
        let namespaces: Vec<String> = namespaces.into_iter().map(Into::into).collect();
        self.cache.push(Box::new(move |factory| factory.with_namespaces(namespaces)));
        self
    }

    /// After this long without every cache synced, `/readyz` reports which are not (default
    /// 2 minutes, controller-runtime's `CacheSyncTimeout`). The manager keeps waiting.
    #[must_use]
    pub fn cache_sync_timeout(mut self, timeout: Duration) -> Self {
        self.cache_sync_timeout = timeout;
        self
    }

    /// How long in-flight reconciles may finish at shutdown (default 30 s).
    #[must_use]
    pub fn graceful_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.graceful_shutdown_timeout = timeout;
        self
    }

    /// This process's identity (events' `reportingInstance`; leader election). Default: the
    /// host name and a random suffix.
    #[must_use]
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = Some(identity.into());
        self
    }

    /// Runs the controllers only while this replica holds the Lease `namespace/name`
    /// (controller-runtime's `LeaderElection`); caches warm up before. Graceful shutdown
    /// releases the lease. Adds a `leaderElection` health check and the
    /// `leader_election_master_status{name}` metric.
    #[must_use]
    pub fn leader_election(mut self, name: impl Into<String>, namespace: impl Into<String>) -> Self {
        self.leader = Some((name.into(), namespace.into()));
        self
    }

    /// The election's timing (default: client-go's 15 s / 10 s / 2 s, released on shutdown).
    #[must_use]
    pub fn leader_election_config(mut self, config: crate::leader::LeaderElectionConfig) -> Self {
        self.leader_config = config;
        self
    }

    /// What happens when leadership is lost: `true` (default, as controller-runtime) stops the
    /// manager with [`ManagerError::LeadershipLost`] so the process exits non-zero; `false`
    /// stops the controllers and campaigns again.
    #[must_use]
    pub fn exit_on_lost_leadership(mut self, exit: bool) -> Self {
        self.exit_on_lost_leadership = exit;
        self
    }

    /// Whether the cache drops `metadata.managedFields` of every object (default: yes, as
    /// controller-runtime users configure with `cache.TransformStripManagedFields`). It is
    /// dropped while each event is decoded, at no extra cost, and saves about a fifth of a
    /// typical object's bytes. Opt out with `strip_managed_fields(false)` when a reconciler
    /// reads managedFields from the cache (reads through the clients always have them).
    #[must_use]
    pub fn strip_managed_fields(mut self, strip: bool) -> Self {
        self.strip_managed_fields = strip;
        self
    }

    /// The manager: clients are created and the metrics address is bound now.
    pub fn build(self) -> Result<Manager, ManagerError> {
        let mut config = self.config;
        let mut registry = Registry::default();
        registry.register_collector(Box::new(super::process_metrics::ProcessCollector));
        // The manager's clients report client-go's rest_client_* metrics (a hook the user set
        // on the config is kept).
        if config.metrics.is_none() {
            let client_metrics = super::client_metrics::ClientMetrics::new(&mut registry);
            config.metrics = Some(krust_client::MetricsHook(Arc::new(client_metrics)));
        }
        let clientset = Clientset::new(&config)?;
        let dynamic = DynamicClient::new(&config)?;
        let rest = RestClient::new(&config.clone().with_group_version(GroupVersion::gv("", "v1")))?;
        let mut factory =
            SharedInformerFactory::new(&rest).with_strip_managed_fields(self.strip_managed_fields);
        if let Some(ns) = &self.namespace {
            factory = factory.with_namespace(ns);
        }
        for apply in self.cache {
            factory = apply(factory);
        }
        let listener = match &self.metrics_addr {
            Some(addr) => {
                let listener = std::net::TcpListener::bind(addr.as_str())
                    .map_err(|source| ManagerError::Bind { addr: addr.clone(), source })?;
                listener
                    .set_nonblocking(true)
                    .map_err(|source| ManagerError::Bind { addr: addr.clone(), source })?;
                Some(listener)
            }
            None => None,
        };
        let local_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        let probe_listener = match &self.health_probe_addr {
            Some(addr) => {
                let bind = |addr: &str| {
                    let listener = std::net::TcpListener::bind(addr)?;
                    listener.set_nonblocking(true)?;
                    Ok::<_, std::io::Error>(listener)
                };
                Some(
                    bind(addr.as_str())
                        .map_err(|source| ManagerError::Bind { addr: addr.clone(), source })?,
                )
            }
            None => None,
        };
        let probe_addr = probe_listener.as_ref().and_then(|l| l.local_addr().ok());
        let metrics_serving = match &self.secure_metrics {
            Some(secure) => {
                let certs = crate::webhook::certs::Reloading::load(
                    secure.cert_dir.join("tls.crt"),
                    secure.cert_dir.join("tls.key"),
                )
                .map_err(|e| ManagerError::Certificate(e.to_string()))?;
                super::http::Serving {
                    metrics: true,
                    probes: probe_listener.is_none(),
                    tls: Some(certs),
                    auth: Some(Arc::new(super::secure::Delegated::new(clientset.clone()))),
                }
            }
            None => super::http::Serving {
                metrics: true,
                probes: probe_listener.is_none(),
                tls: None,
                auth: None,
            },
        };
        let controller_metrics = ControllerMetrics::new(&mut registry);
        if let Some(webhook) = &self.webhook {
            webhook.register_metrics(&mut registry);
        }
        let queue_metrics = Arc::new(PrometheusMetrics::new(&mut registry));
        let identity = self.identity.unwrap_or_else(default_identity);
        let leader = match self.leader {
            Some((name, namespace)) => {
                self.leader_config.validate()?;
                let status = prometheus_client::metrics::family::Family::<
                    Vec<(String, String)>,
                    prometheus_client::metrics::gauge::Gauge,
                >::default();
                registry.register(
                    "leader_election_master_status",
                    "1 while this replica is the leader of the named election, else 0",
                    status.clone(),
                );
                let gauge = status.get_or_create(&vec![("name".to_string(), name.clone())]).clone();
                Some(Election {
                    name,
                    namespace,
                    config: self.leader_config,
                    exit_on_lost: self.exit_on_lost_leadership,
                    status: gauge,
                })
            }
            None => None,
        };
        Ok(Manager {
            inner: Arc::new(Inner {
                config,
                clientset,
                dynamic,
                factory: Arc::new(factory),
                registry: Arc::new(Mutex::new(registry)),
                controller_metrics,
                queue_metrics,
                controllers: Mutex::new(Vec::new()),
                runnables: Mutex::new(Vec::new()),
                everywhere: Mutex::new(Vec::new()),
                listener: Mutex::new(listener),
                local_addr,
                metrics_serving,
                probe_listener: Mutex::new(probe_listener),
                probe_addr,
                ready: AtomicBool::new(false),
                sync_problem: Mutex::new(None),
                health_checks: Mutex::new(Vec::new()),
                ready_checks: Mutex::new(Vec::new()),
                shutdown: CancellationToken::new(),
                started: AtomicBool::new(false),
                cache_sync_timeout: self.cache_sync_timeout,
                grace: self.graceful_shutdown_timeout,
                identity,
                leader: Mutex::new(leader),
                webhook: Mutex::new(self.webhook),
            }),
        })
    }
}

/// The host name (or `krust`) and a random suffix.
pub fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "krust".to_string());
    format!("{host}_{:08x}", crate::random::random_u64() as u32)
}
