// Generated from k8s-openapi 0.29 (Kubernetes 1.33 to 1.37) by
// scripts/gen-clientset-table.py: every resource type with its own URL segment. What exists only
// in some Kubernetes versions is wrapped in k8s-openapi's version macros. Regenerate when
// k8s-openapi changes.
group_version!(admissionregistration_v1 => AdmissionregistrationV1, "admissionregistration.k8s.io", "v1");
impl AdmissionregistrationV1 {
    resource_method!(mutating_webhook_configurations, k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration, "mutatingwebhookconfigurations", cluster);
    resource_method!(validating_admission_policies, k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy, "validatingadmissionpolicies", cluster);
    resource_method!(validating_admission_policy_bindings, k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding, "validatingadmissionpolicybindings", cluster);
    resource_method!(validating_webhook_configurations, k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration, "validatingwebhookconfigurations", cluster);
}
k8s_openapi::k8s_if_ge_1_36! {
    impl AdmissionregistrationV1 {
        resource_method!(mutating_admission_policies, k8s_openapi::api::admissionregistration::v1::MutatingAdmissionPolicy, "mutatingadmissionpolicies", cluster);
    }
}
k8s_openapi::k8s_if_ge_1_36! {
    impl AdmissionregistrationV1 {
        resource_method!(mutating_admission_policy_bindings, k8s_openapi::api::admissionregistration::v1::MutatingAdmissionPolicyBinding, "mutatingadmissionpolicybindings", cluster);
    }
}
group_version!(admissionregistration_v1alpha1 => AdmissionregistrationV1alpha1, "admissionregistration.k8s.io", "v1alpha1");
impl AdmissionregistrationV1alpha1 {
    resource_method!(mutating_admission_policies, k8s_openapi::api::admissionregistration::v1alpha1::MutatingAdmissionPolicy, "mutatingadmissionpolicies", cluster);
    resource_method!(mutating_admission_policy_bindings, k8s_openapi::api::admissionregistration::v1alpha1::MutatingAdmissionPolicyBinding, "mutatingadmissionpolicybindings", cluster);
}
group_version!(admissionregistration_v1beta1 => AdmissionregistrationV1beta1, "admissionregistration.k8s.io", "v1beta1");
k8s_openapi::k8s_if_ge_1_34! {
    impl AdmissionregistrationV1beta1 {
        resource_method!(mutating_admission_policies, k8s_openapi::api::admissionregistration::v1beta1::MutatingAdmissionPolicy, "mutatingadmissionpolicies", cluster);
    }
}
k8s_openapi::k8s_if_ge_1_34! {
    impl AdmissionregistrationV1beta1 {
        resource_method!(mutating_admission_policy_bindings, k8s_openapi::api::admissionregistration::v1beta1::MutatingAdmissionPolicyBinding, "mutatingadmissionpolicybindings", cluster);
    }
}
k8s_openapi::k8s_if_le_1_33! {
    impl AdmissionregistrationV1beta1 {
        resource_method!(validating_admission_policies, k8s_openapi::api::admissionregistration::v1beta1::ValidatingAdmissionPolicy, "validatingadmissionpolicies", cluster);
    }
}
k8s_openapi::k8s_if_le_1_33! {
    impl AdmissionregistrationV1beta1 {
        resource_method!(validating_admission_policy_bindings, k8s_openapi::api::admissionregistration::v1beta1::ValidatingAdmissionPolicyBinding, "validatingadmissionpolicybindings", cluster);
    }
}
group_version!(apiextensions_v1 => ApiextensionsV1, "apiextensions.k8s.io", "v1");
impl ApiextensionsV1 {
    resource_method!(custom_resource_definitions, k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition, "customresourcedefinitions", cluster);
}
group_version!(apiregistration_v1 => ApiregistrationV1, "apiregistration.k8s.io", "v1");
impl ApiregistrationV1 {
    resource_method!(api_services, k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService, "apiservices", cluster);
}
group_version!(apps_v1 => AppsV1, "apps", "v1");
impl AppsV1 {
    resource_method!(controller_revisions, k8s_openapi::api::apps::v1::ControllerRevision, "controllerrevisions", ns);
    resource_method!(daemon_sets, k8s_openapi::api::apps::v1::DaemonSet, "daemonsets", ns);
    resource_method!(deployments, k8s_openapi::api::apps::v1::Deployment, "deployments", ns);
    resource_method!(replica_sets, k8s_openapi::api::apps::v1::ReplicaSet, "replicasets", ns);
    resource_method!(stateful_sets, k8s_openapi::api::apps::v1::StatefulSet, "statefulsets", ns);
}
group_version!(authentication_v1 => AuthenticationV1, "authentication.k8s.io", "v1");
impl AuthenticationV1 {
    resource_method!(self_subject_reviews, k8s_openapi::api::authentication::v1::SelfSubjectReview, "selfsubjectreviews", cluster);
    resource_method!(token_reviews, k8s_openapi::api::authentication::v1::TokenReview, "tokenreviews", cluster);
}
group_version!(authorization_v1 => AuthorizationV1, "authorization.k8s.io", "v1");
impl AuthorizationV1 {
    resource_method!(local_subject_access_reviews, k8s_openapi::api::authorization::v1::LocalSubjectAccessReview, "localsubjectaccessreviews", ns);
    resource_method!(self_subject_access_reviews, k8s_openapi::api::authorization::v1::SelfSubjectAccessReview, "selfsubjectaccessreviews", cluster);
    resource_method!(self_subject_rules_reviews, k8s_openapi::api::authorization::v1::SelfSubjectRulesReview, "selfsubjectrulesreviews", cluster);
    resource_method!(subject_access_reviews, k8s_openapi::api::authorization::v1::SubjectAccessReview, "subjectaccessreviews", cluster);
}
group_version!(autoscaling_v1 => AutoscalingV1, "autoscaling", "v1");
impl AutoscalingV1 {
    resource_method!(horizontal_pod_autoscalers, k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler, "horizontalpodautoscalers", ns);
}
group_version!(autoscaling_v2 => AutoscalingV2, "autoscaling", "v2");
impl AutoscalingV2 {
    resource_method!(horizontal_pod_autoscalers, k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler, "horizontalpodautoscalers", ns);
}
group_version!(batch_v1 => BatchV1, "batch", "v1");
impl BatchV1 {
    resource_method!(cron_jobs, k8s_openapi::api::batch::v1::CronJob, "cronjobs", ns);
    resource_method!(jobs, k8s_openapi::api::batch::v1::Job, "jobs", ns);
}
group_version!(certificates_v1 => CertificatesV1, "certificates.k8s.io", "v1");
impl CertificatesV1 {
    resource_method!(certificate_signing_requests, k8s_openapi::api::certificates::v1::CertificateSigningRequest, "certificatesigningrequests", cluster);
}
k8s_openapi::k8s_if_ge_1_37! {
    impl CertificatesV1 {
        resource_method!(cluster_trust_bundles, k8s_openapi::api::certificates::v1::ClusterTrustBundle, "clustertrustbundles", cluster);
    }
}
k8s_openapi::k8s_if_ge_1_37! {
    impl CertificatesV1 {
        resource_method!(pod_certificate_requests, k8s_openapi::api::certificates::v1::PodCertificateRequest, "podcertificaterequests", ns);
    }
}
k8s_openapi::k8s_if_le_1_36! {
    group_version!(certificates_v1alpha1 => CertificatesV1alpha1, "certificates.k8s.io", "v1alpha1");
    impl CertificatesV1alpha1 {
        resource_method!(cluster_trust_bundles, k8s_openapi::api::certificates::v1alpha1::ClusterTrustBundle, "clustertrustbundles", cluster);
    }
}
k8s_openapi::k8s_if_1_34! {
    impl CertificatesV1alpha1 {
        resource_method!(pod_certificate_requests, k8s_openapi::api::certificates::v1alpha1::PodCertificateRequest, "podcertificaterequests", ns);
    }
}
group_version!(certificates_v1beta1 => CertificatesV1beta1, "certificates.k8s.io", "v1beta1");
impl CertificatesV1beta1 {
    resource_method!(cluster_trust_bundles, k8s_openapi::api::certificates::v1beta1::ClusterTrustBundle, "clustertrustbundles", cluster);
}
k8s_openapi::k8s_if_ge_1_35! {
    impl CertificatesV1beta1 {
        resource_method!(pod_certificate_requests, k8s_openapi::api::certificates::v1beta1::PodCertificateRequest, "podcertificaterequests", ns);
    }
}
group_version!(coordination_v1 => CoordinationV1, "coordination.k8s.io", "v1");
impl CoordinationV1 {
    resource_method!(leases, k8s_openapi::api::coordination::v1::Lease, "leases", ns);
}
group_version!(coordination_v1alpha2 => CoordinationV1alpha2, "coordination.k8s.io", "v1alpha2");
impl CoordinationV1alpha2 {
    resource_method!(lease_candidates, k8s_openapi::api::coordination::v1alpha2::LeaseCandidate, "leasecandidates", ns);
}
group_version!(coordination_v1beta1 => CoordinationV1beta1, "coordination.k8s.io", "v1beta1");
impl CoordinationV1beta1 {
    resource_method!(lease_candidates, k8s_openapi::api::coordination::v1beta1::LeaseCandidate, "leasecandidates", ns);
}
group_version!(core_v1 => CoreV1, "", "v1");
impl CoreV1 {
    resource_method!(bindings, k8s_openapi::api::core::v1::Binding, "bindings", ns);
    resource_method!(component_statuses, k8s_openapi::api::core::v1::ComponentStatus, "componentstatuses", cluster);
    resource_method!(config_maps, k8s_openapi::api::core::v1::ConfigMap, "configmaps", ns);
    resource_method!(endpoints, k8s_openapi::api::core::v1::Endpoints, "endpoints", ns);
    resource_method!(events, k8s_openapi::api::core::v1::Event, "events", ns);
    resource_method!(limit_ranges, k8s_openapi::api::core::v1::LimitRange, "limitranges", ns);
    resource_method!(namespaces, k8s_openapi::api::core::v1::Namespace, "namespaces", cluster);
    resource_method!(nodes, k8s_openapi::api::core::v1::Node, "nodes", cluster);
    resource_method!(persistent_volume_claims, k8s_openapi::api::core::v1::PersistentVolumeClaim, "persistentvolumeclaims", ns);
    resource_method!(persistent_volumes, k8s_openapi::api::core::v1::PersistentVolume, "persistentvolumes", cluster);
    resource_method!(pod_templates, k8s_openapi::api::core::v1::PodTemplate, "podtemplates", ns);
    resource_method!(pods, k8s_openapi::api::core::v1::Pod, "pods", ns);
    resource_method!(replication_controllers, k8s_openapi::api::core::v1::ReplicationController, "replicationcontrollers", ns);
    resource_method!(resource_quotas, k8s_openapi::api::core::v1::ResourceQuota, "resourcequotas", ns);
    resource_method!(secrets, k8s_openapi::api::core::v1::Secret, "secrets", ns);
    resource_method!(service_accounts, k8s_openapi::api::core::v1::ServiceAccount, "serviceaccounts", ns);
    resource_method!(services, k8s_openapi::api::core::v1::Service, "services", ns);
}
group_version!(discovery_v1 => DiscoveryV1, "discovery.k8s.io", "v1");
impl DiscoveryV1 {
    resource_method!(endpoint_slices, k8s_openapi::api::discovery::v1::EndpointSlice, "endpointslices", ns);
}
group_version!(events_v1 => EventsV1, "events.k8s.io", "v1");
impl EventsV1 {
    resource_method!(events, k8s_openapi::api::events::v1::Event, "events", ns);
}
group_version!(flowcontrol_v1 => FlowcontrolV1, "flowcontrol.apiserver.k8s.io", "v1");
impl FlowcontrolV1 {
    resource_method!(flow_schemas, k8s_openapi::api::flowcontrol::v1::FlowSchema, "flowschemas", cluster);
    resource_method!(priority_level_configurations, k8s_openapi::api::flowcontrol::v1::PriorityLevelConfiguration, "prioritylevelconfigurations", cluster);
}
group_version!(internal_v1alpha1 => InternalV1alpha1, "internal.apiserver.k8s.io", "v1alpha1");
impl InternalV1alpha1 {
    resource_method!(storage_versions, k8s_openapi::api::apiserverinternal::v1alpha1::StorageVersion, "storageversions", cluster);
}
k8s_openapi::k8s_if_ge_1_37! {
    group_version!(lifecycle_v1alpha1 => LifecycleV1alpha1, "lifecycle.k8s.io", "v1alpha1");
    impl LifecycleV1alpha1 {
        resource_method!(eviction_requests, k8s_openapi::api::lifecycle::v1alpha1::EvictionRequest, "evictionrequests", ns);
        resource_method!(evictions, k8s_openapi::api::lifecycle::v1alpha1::Eviction, "evictions", ns);
    }
}
group_version!(networking_v1 => NetworkingV1, "networking.k8s.io", "v1");
impl NetworkingV1 {
    resource_method!(ingress_classes, k8s_openapi::api::networking::v1::IngressClass, "ingressclasses", cluster);
    resource_method!(ingresses, k8s_openapi::api::networking::v1::Ingress, "ingresses", ns);
    resource_method!(ip_addresses, k8s_openapi::api::networking::v1::IPAddress, "ipaddresses", cluster);
    resource_method!(network_policies, k8s_openapi::api::networking::v1::NetworkPolicy, "networkpolicies", ns);
    resource_method!(service_cidrs, k8s_openapi::api::networking::v1::ServiceCIDR, "servicecidrs", cluster);
}
k8s_openapi::k8s_if_le_1_36! {
    group_version!(networking_v1beta1 => NetworkingV1beta1, "networking.k8s.io", "v1beta1");
    impl NetworkingV1beta1 {
        resource_method!(ip_addresses, k8s_openapi::api::networking::v1beta1::IPAddress, "ipaddresses", cluster);
        resource_method!(service_cidrs, k8s_openapi::api::networking::v1beta1::ServiceCIDR, "servicecidrs", cluster);
    }
}
group_version!(node_v1 => NodeV1, "node.k8s.io", "v1");
impl NodeV1 {
    resource_method!(runtime_classes, k8s_openapi::api::node::v1::RuntimeClass, "runtimeclasses", cluster);
}
group_version!(policy_v1 => PolicyV1, "policy", "v1");
impl PolicyV1 {
    resource_method!(pod_disruption_budgets, k8s_openapi::api::policy::v1::PodDisruptionBudget, "poddisruptionbudgets", ns);
}
group_version!(rbac_v1 => RbacV1, "rbac.authorization.k8s.io", "v1");
impl RbacV1 {
    resource_method!(cluster_role_bindings, k8s_openapi::api::rbac::v1::ClusterRoleBinding, "clusterrolebindings", cluster);
    resource_method!(cluster_roles, k8s_openapi::api::rbac::v1::ClusterRole, "clusterroles", cluster);
    resource_method!(role_bindings, k8s_openapi::api::rbac::v1::RoleBinding, "rolebindings", ns);
    resource_method!(roles, k8s_openapi::api::rbac::v1::Role, "roles", ns);
}
k8s_openapi::k8s_if_ge_1_34! {
    group_version!(resource_v1 => ResourceV1, "resource.k8s.io", "v1");
    impl ResourceV1 {
        resource_method!(device_classes, k8s_openapi::api::resource::v1::DeviceClass, "deviceclasses", cluster);
        resource_method!(resource_claim_templates, k8s_openapi::api::resource::v1::ResourceClaimTemplate, "resourceclaimtemplates", ns);
        resource_method!(resource_claims, k8s_openapi::api::resource::v1::ResourceClaim, "resourceclaims", ns);
        resource_method!(resource_slices, k8s_openapi::api::resource::v1::ResourceSlice, "resourceslices", cluster);
    }
}
k8s_openapi::k8s_if_ge_1_37! {
    impl ResourceV1 {
        resource_method!(device_taint_rules, k8s_openapi::api::resource::v1::DeviceTaintRule, "devicetaintrules", cluster);
    }
}
group_version!(resource_v1alpha3 => ResourceV1alpha3, "resource.k8s.io", "v1alpha3");
impl ResourceV1alpha3 {
    resource_method!(device_taint_rules, k8s_openapi::api::resource::v1alpha3::DeviceTaintRule, "devicetaintrules", cluster);
}
k8s_openapi::k8s_if_le_1_33! {
    impl ResourceV1alpha3 {
        resource_method!(device_classes, k8s_openapi::api::resource::v1alpha3::DeviceClass, "deviceclasses", cluster);
    }
}
k8s_openapi::k8s_if_le_1_33! {
    impl ResourceV1alpha3 {
        resource_method!(resource_claim_templates, k8s_openapi::api::resource::v1alpha3::ResourceClaimTemplate, "resourceclaimtemplates", ns);
    }
}
k8s_openapi::k8s_if_le_1_33! {
    impl ResourceV1alpha3 {
        resource_method!(resource_claims, k8s_openapi::api::resource::v1alpha3::ResourceClaim, "resourceclaims", ns);
    }
}
k8s_openapi::k8s_if_ge_1_36! {
    impl ResourceV1alpha3 {
        resource_method!(resource_pool_status_requests, k8s_openapi::api::resource::v1alpha3::ResourcePoolStatusRequest, "resourcepoolstatusrequests", cluster);
    }
}
k8s_openapi::k8s_if_le_1_33! {
    impl ResourceV1alpha3 {
        resource_method!(resource_slices, k8s_openapi::api::resource::v1alpha3::ResourceSlice, "resourceslices", cluster);
    }
}
group_version!(resource_v1beta1 => ResourceV1beta1, "resource.k8s.io", "v1beta1");
impl ResourceV1beta1 {
    resource_method!(device_classes, k8s_openapi::api::resource::v1beta1::DeviceClass, "deviceclasses", cluster);
    resource_method!(resource_claim_templates, k8s_openapi::api::resource::v1beta1::ResourceClaimTemplate, "resourceclaimtemplates", ns);
    resource_method!(resource_claims, k8s_openapi::api::resource::v1beta1::ResourceClaim, "resourceclaims", ns);
    resource_method!(resource_slices, k8s_openapi::api::resource::v1beta1::ResourceSlice, "resourceslices", cluster);
}
group_version!(resource_v1beta2 => ResourceV1beta2, "resource.k8s.io", "v1beta2");
impl ResourceV1beta2 {
    resource_method!(device_classes, k8s_openapi::api::resource::v1beta2::DeviceClass, "deviceclasses", cluster);
    resource_method!(resource_claim_templates, k8s_openapi::api::resource::v1beta2::ResourceClaimTemplate, "resourceclaimtemplates", ns);
    resource_method!(resource_claims, k8s_openapi::api::resource::v1beta2::ResourceClaim, "resourceclaims", ns);
    resource_method!(resource_slices, k8s_openapi::api::resource::v1beta2::ResourceSlice, "resourceslices", cluster);
}
k8s_openapi::k8s_if_ge_1_36! {
    impl ResourceV1beta2 {
        resource_method!(device_taint_rules, k8s_openapi::api::resource::v1beta2::DeviceTaintRule, "devicetaintrules", cluster);
    }
}
group_version!(scheduling_v1 => SchedulingV1, "scheduling.k8s.io", "v1");
impl SchedulingV1 {
    resource_method!(priority_classes, k8s_openapi::api::scheduling::v1::PriorityClass, "priorityclasses", cluster);
}
k8s_openapi::k8s_if_1_35! {
    group_version!(scheduling_v1alpha1 => SchedulingV1alpha1, "scheduling.k8s.io", "v1alpha1");
    impl SchedulingV1alpha1 {
        resource_method!(workloads, k8s_openapi::api::scheduling::v1alpha1::Workload, "workloads", ns);
    }
}
k8s_openapi::k8s_if_1_36! {
    group_version!(scheduling_v1alpha2 => SchedulingV1alpha2, "scheduling.k8s.io", "v1alpha2");
    impl SchedulingV1alpha2 {
        resource_method!(pod_groups, k8s_openapi::api::scheduling::v1alpha2::PodGroup, "podgroups", ns);
        resource_method!(workloads, k8s_openapi::api::scheduling::v1alpha2::Workload, "workloads", ns);
    }
}
k8s_openapi::k8s_if_ge_1_37! {
    group_version!(scheduling_v1alpha3 => SchedulingV1alpha3, "scheduling.k8s.io", "v1alpha3");
    impl SchedulingV1alpha3 {
        resource_method!(composite_pod_groups, k8s_openapi::api::scheduling::v1alpha3::CompositePodGroup, "compositepodgroups", ns);
        resource_method!(pod_groups, k8s_openapi::api::scheduling::v1alpha3::PodGroup, "podgroups", ns);
        resource_method!(workloads, k8s_openapi::api::scheduling::v1alpha3::Workload, "workloads", ns);
    }
}
k8s_openapi::k8s_if_ge_1_37! {
    group_version!(scheduling_v1beta1 => SchedulingV1beta1, "scheduling.k8s.io", "v1beta1");
    impl SchedulingV1beta1 {
        resource_method!(pod_groups, k8s_openapi::api::scheduling::v1beta1::PodGroup, "podgroups", ns);
        resource_method!(workloads, k8s_openapi::api::scheduling::v1beta1::Workload, "workloads", ns);
    }
}
group_version!(storage_v1 => StorageV1, "storage.k8s.io", "v1");
impl StorageV1 {
    resource_method!(csi_drivers, k8s_openapi::api::storage::v1::CSIDriver, "csidrivers", cluster);
    resource_method!(csi_nodes, k8s_openapi::api::storage::v1::CSINode, "csinodes", cluster);
    resource_method!(csi_storage_capacities, k8s_openapi::api::storage::v1::CSIStorageCapacity, "csistoragecapacities", ns);
    resource_method!(storage_classes, k8s_openapi::api::storage::v1::StorageClass, "storageclasses", cluster);
    resource_method!(volume_attachments, k8s_openapi::api::storage::v1::VolumeAttachment, "volumeattachments", cluster);
}
k8s_openapi::k8s_if_ge_1_34! {
    impl StorageV1 {
        resource_method!(volume_attributes_classes, k8s_openapi::api::storage::v1::VolumeAttributesClass, "volumeattributesclasses", cluster);
    }
}
k8s_openapi::k8s_if_le_1_34! {
    group_version!(storage_v1alpha1 => StorageV1alpha1, "storage.k8s.io", "v1alpha1");
    impl StorageV1alpha1 {
        resource_method!(volume_attributes_classes, k8s_openapi::api::storage::v1alpha1::VolumeAttributesClass, "volumeattributesclasses", cluster);
    }
}
k8s_openapi::k8s_if_le_1_36! {
    group_version!(storage_v1beta1 => StorageV1beta1, "storage.k8s.io", "v1beta1");
    impl StorageV1beta1 {
        resource_method!(volume_attributes_classes, k8s_openapi::api::storage::v1beta1::VolumeAttributesClass, "volumeattributesclasses", cluster);
    }
}
k8s_openapi::k8s_if_ge_1_37! {
    group_version!(storagemigration_v1 => StoragemigrationV1, "storagemigration.k8s.io", "v1");
    impl StoragemigrationV1 {
        resource_method!(storage_version_migrations, k8s_openapi::api::storagemigration::v1::StorageVersionMigration, "storageversionmigrations", cluster);
    }
}
k8s_openapi::k8s_if_le_1_34! {
    group_version!(storagemigration_v1alpha1 => StoragemigrationV1alpha1, "storagemigration.k8s.io", "v1alpha1");
    impl StoragemigrationV1alpha1 {
        resource_method!(storage_version_migrations, k8s_openapi::api::storagemigration::v1alpha1::StorageVersionMigration, "storageversionmigrations", cluster);
    }
}
k8s_openapi::k8s_if_ge_1_35! {
    group_version!(storagemigration_v1beta1 => StoragemigrationV1beta1, "storagemigration.k8s.io", "v1beta1");
    impl StoragemigrationV1beta1 {
        resource_method!(storage_version_migrations, k8s_openapi::api::storagemigration::v1beta1::StorageVersionMigration, "storageversionmigrations", cluster);
    }
}
