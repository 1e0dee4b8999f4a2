// Generated from k8s-openapi 0.29 (v1_33): every resource type with its own URL segment.
// Regenerate with scripts/gen-clientset-table.py when the Kubernetes version changes.
group_versions! {
    core_v1 => CoreV1, "", "v1" {
        bindings: k8s_openapi::api::core::v1::Binding, "bindings", ns;
        component_statuses: k8s_openapi::api::core::v1::ComponentStatus, "componentstatuses", cluster;
        config_maps: k8s_openapi::api::core::v1::ConfigMap, "configmaps", ns;
        endpoints: k8s_openapi::api::core::v1::Endpoints, "endpoints", ns;
        events: k8s_openapi::api::core::v1::Event, "events", ns;
        limit_ranges: k8s_openapi::api::core::v1::LimitRange, "limitranges", ns;
        namespaces: k8s_openapi::api::core::v1::Namespace, "namespaces", cluster;
        nodes: k8s_openapi::api::core::v1::Node, "nodes", cluster;
        persistent_volumes: k8s_openapi::api::core::v1::PersistentVolume, "persistentvolumes", cluster;
        persistent_volume_claims: k8s_openapi::api::core::v1::PersistentVolumeClaim, "persistentvolumeclaims", ns;
        pods: k8s_openapi::api::core::v1::Pod, "pods", ns;
        pod_templates: k8s_openapi::api::core::v1::PodTemplate, "podtemplates", ns;
        replication_controllers: k8s_openapi::api::core::v1::ReplicationController, "replicationcontrollers", ns;
        resource_quotas: k8s_openapi::api::core::v1::ResourceQuota, "resourcequotas", ns;
        secrets: k8s_openapi::api::core::v1::Secret, "secrets", ns;
        services: k8s_openapi::api::core::v1::Service, "services", ns;
        service_accounts: k8s_openapi::api::core::v1::ServiceAccount, "serviceaccounts", ns;
    }
    admissionregistration_v1 => AdmissionregistrationV1, "admissionregistration.k8s.io", "v1" {
        mutating_webhook_configurations: k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration, "mutatingwebhookconfigurations", cluster;
        validating_admission_policies: k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy, "validatingadmissionpolicies", cluster;
        validating_admission_policy_bindings: k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding, "validatingadmissionpolicybindings", cluster;
        validating_webhook_configurations: k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration, "validatingwebhookconfigurations", cluster;
    }
    admissionregistration_v1alpha1 => AdmissionregistrationV1alpha1, "admissionregistration.k8s.io", "v1alpha1" {
        mutating_admission_policies: k8s_openapi::api::admissionregistration::v1alpha1::MutatingAdmissionPolicy, "mutatingadmissionpolicies", cluster;
        mutating_admission_policy_bindings: k8s_openapi::api::admissionregistration::v1alpha1::MutatingAdmissionPolicyBinding, "mutatingadmissionpolicybindings", cluster;
    }
    admissionregistration_v1beta1 => AdmissionregistrationV1beta1, "admissionregistration.k8s.io", "v1beta1" {
        validating_admission_policies: k8s_openapi::api::admissionregistration::v1beta1::ValidatingAdmissionPolicy, "validatingadmissionpolicies", cluster;
        validating_admission_policy_bindings: k8s_openapi::api::admissionregistration::v1beta1::ValidatingAdmissionPolicyBinding, "validatingadmissionpolicybindings", cluster;
    }
    apiextensions_v1 => ApiextensionsV1, "apiextensions.k8s.io", "v1" {
        custom_resource_definitions: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition, "customresourcedefinitions", cluster;
    }
    apiregistration_v1 => ApiregistrationV1, "apiregistration.k8s.io", "v1" {
        api_services: k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService, "apiservices", cluster;
    }
    apps_v1 => AppsV1, "apps", "v1" {
        controller_revisions: k8s_openapi::api::apps::v1::ControllerRevision, "controllerrevisions", ns;
        daemon_sets: k8s_openapi::api::apps::v1::DaemonSet, "daemonsets", ns;
        deployments: k8s_openapi::api::apps::v1::Deployment, "deployments", ns;
        replica_sets: k8s_openapi::api::apps::v1::ReplicaSet, "replicasets", ns;
        stateful_sets: k8s_openapi::api::apps::v1::StatefulSet, "statefulsets", ns;
    }
    authentication_v1 => AuthenticationV1, "authentication.k8s.io", "v1" {
        self_subject_reviews: k8s_openapi::api::authentication::v1::SelfSubjectReview, "selfsubjectreviews", cluster;
        token_reviews: k8s_openapi::api::authentication::v1::TokenReview, "tokenreviews", cluster;
    }
    authorization_v1 => AuthorizationV1, "authorization.k8s.io", "v1" {
        local_subject_access_reviews: k8s_openapi::api::authorization::v1::LocalSubjectAccessReview, "localsubjectaccessreviews", ns;
        self_subject_access_reviews: k8s_openapi::api::authorization::v1::SelfSubjectAccessReview, "selfsubjectaccessreviews", cluster;
        self_subject_rules_reviews: k8s_openapi::api::authorization::v1::SelfSubjectRulesReview, "selfsubjectrulesreviews", cluster;
        subject_access_reviews: k8s_openapi::api::authorization::v1::SubjectAccessReview, "subjectaccessreviews", cluster;
    }
    autoscaling_v1 => AutoscalingV1, "autoscaling", "v1" {
        horizontal_pod_autoscalers: k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler, "horizontalpodautoscalers", ns;
    }
    autoscaling_v2 => AutoscalingV2, "autoscaling", "v2" {
        horizontal_pod_autoscalers: k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler, "horizontalpodautoscalers", ns;
    }
    batch_v1 => BatchV1, "batch", "v1" {
        cron_jobs: k8s_openapi::api::batch::v1::CronJob, "cronjobs", ns;
        jobs: k8s_openapi::api::batch::v1::Job, "jobs", ns;
    }
    certificates_v1 => CertificatesV1, "certificates.k8s.io", "v1" {
        certificate_signing_requests: k8s_openapi::api::certificates::v1::CertificateSigningRequest, "certificatesigningrequests", cluster;
    }
    certificates_v1alpha1 => CertificatesV1alpha1, "certificates.k8s.io", "v1alpha1" {
        cluster_trust_bundles: k8s_openapi::api::certificates::v1alpha1::ClusterTrustBundle, "clustertrustbundles", cluster;
    }
    certificates_v1beta1 => CertificatesV1beta1, "certificates.k8s.io", "v1beta1" {
        cluster_trust_bundles: k8s_openapi::api::certificates::v1beta1::ClusterTrustBundle, "clustertrustbundles", cluster;
    }
    coordination_v1 => CoordinationV1, "coordination.k8s.io", "v1" {
        leases: k8s_openapi::api::coordination::v1::Lease, "leases", ns;
    }
    coordination_v1alpha2 => CoordinationV1alpha2, "coordination.k8s.io", "v1alpha2" {
        lease_candidates: k8s_openapi::api::coordination::v1alpha2::LeaseCandidate, "leasecandidates", ns;
    }
    coordination_v1beta1 => CoordinationV1beta1, "coordination.k8s.io", "v1beta1" {
        lease_candidates: k8s_openapi::api::coordination::v1beta1::LeaseCandidate, "leasecandidates", ns;
    }
    discovery_v1 => DiscoveryV1, "discovery.k8s.io", "v1" {
        endpoint_slices: k8s_openapi::api::discovery::v1::EndpointSlice, "endpointslices", ns;
    }
    events_v1 => EventsV1, "events.k8s.io", "v1" {
        events: k8s_openapi::api::events::v1::Event, "events", ns;
    }
    flowcontrol_v1 => FlowcontrolV1, "flowcontrol.apiserver.k8s.io", "v1" {
        flow_schemas: k8s_openapi::api::flowcontrol::v1::FlowSchema, "flowschemas", cluster;
        priority_level_configurations: k8s_openapi::api::flowcontrol::v1::PriorityLevelConfiguration, "prioritylevelconfigurations", cluster;
    }
    internal_v1alpha1 => InternalV1alpha1, "internal.apiserver.k8s.io", "v1alpha1" {
        storage_versions: k8s_openapi::api::apiserverinternal::v1alpha1::StorageVersion, "storageversions", cluster;
    }
    networking_v1 => NetworkingV1, "networking.k8s.io", "v1" {
        ip_addresses: k8s_openapi::api::networking::v1::IPAddress, "ipaddresses", cluster;
        ingresses: k8s_openapi::api::networking::v1::Ingress, "ingresses", ns;
        ingress_classes: k8s_openapi::api::networking::v1::IngressClass, "ingressclasses", cluster;
        network_policies: k8s_openapi::api::networking::v1::NetworkPolicy, "networkpolicies", ns;
        service_cidrs: k8s_openapi::api::networking::v1::ServiceCIDR, "servicecidrs", cluster;
    }
    networking_v1beta1 => NetworkingV1beta1, "networking.k8s.io", "v1beta1" {
        ip_addresses: k8s_openapi::api::networking::v1beta1::IPAddress, "ipaddresses", cluster;
        service_cidrs: k8s_openapi::api::networking::v1beta1::ServiceCIDR, "servicecidrs", cluster;
    }
    node_v1 => NodeV1, "node.k8s.io", "v1" {
        runtime_classes: k8s_openapi::api::node::v1::RuntimeClass, "runtimeclasses", cluster;
    }
    policy_v1 => PolicyV1, "policy", "v1" {
        pod_disruption_budgets: k8s_openapi::api::policy::v1::PodDisruptionBudget, "poddisruptionbudgets", ns;
    }
    rbac_v1 => RbacV1, "rbac.authorization.k8s.io", "v1" {
        cluster_roles: k8s_openapi::api::rbac::v1::ClusterRole, "clusterroles", cluster;
        cluster_role_bindings: k8s_openapi::api::rbac::v1::ClusterRoleBinding, "clusterrolebindings", cluster;
        roles: k8s_openapi::api::rbac::v1::Role, "roles", ns;
        role_bindings: k8s_openapi::api::rbac::v1::RoleBinding, "rolebindings", ns;
    }
    resource_v1alpha3 => ResourceV1alpha3, "resource.k8s.io", "v1alpha3" {
        device_classes: k8s_openapi::api::resource::v1alpha3::DeviceClass, "deviceclasses", cluster;
        device_taint_rules: k8s_openapi::api::resource::v1alpha3::DeviceTaintRule, "devicetaintrules", cluster;
        resource_claims: k8s_openapi::api::resource::v1alpha3::ResourceClaim, "resourceclaims", ns;
        resource_claim_templates: k8s_openapi::api::resource::v1alpha3::ResourceClaimTemplate, "resourceclaimtemplates", ns;
        resource_slices: k8s_openapi::api::resource::v1alpha3::ResourceSlice, "resourceslices", cluster;
    }
    resource_v1beta1 => ResourceV1beta1, "resource.k8s.io", "v1beta1" {
        device_classes: k8s_openapi::api::resource::v1beta1::DeviceClass, "deviceclasses", cluster;
        resource_claims: k8s_openapi::api::resource::v1beta1::ResourceClaim, "resourceclaims", ns;
        resource_claim_templates: k8s_openapi::api::resource::v1beta1::ResourceClaimTemplate, "resourceclaimtemplates", ns;
        resource_slices: k8s_openapi::api::resource::v1beta1::ResourceSlice, "resourceslices", cluster;
    }
    resource_v1beta2 => ResourceV1beta2, "resource.k8s.io", "v1beta2" {
        device_classes: k8s_openapi::api::resource::v1beta2::DeviceClass, "deviceclasses", cluster;
        resource_claims: k8s_openapi::api::resource::v1beta2::ResourceClaim, "resourceclaims", ns;
        resource_claim_templates: k8s_openapi::api::resource::v1beta2::ResourceClaimTemplate, "resourceclaimtemplates", ns;
        resource_slices: k8s_openapi::api::resource::v1beta2::ResourceSlice, "resourceslices", cluster;
    }
    scheduling_v1 => SchedulingV1, "scheduling.k8s.io", "v1" {
        priority_classes: k8s_openapi::api::scheduling::v1::PriorityClass, "priorityclasses", cluster;
    }
    storage_v1 => StorageV1, "storage.k8s.io", "v1" {
        csi_drivers: k8s_openapi::api::storage::v1::CSIDriver, "csidrivers", cluster;
        csi_nodes: k8s_openapi::api::storage::v1::CSINode, "csinodes", cluster;
        csi_storage_capacities: k8s_openapi::api::storage::v1::CSIStorageCapacity, "csistoragecapacities", ns;
        storage_classes: k8s_openapi::api::storage::v1::StorageClass, "storageclasses", cluster;
        volume_attachments: k8s_openapi::api::storage::v1::VolumeAttachment, "volumeattachments", cluster;
    }
    storage_v1alpha1 => StorageV1alpha1, "storage.k8s.io", "v1alpha1" {
        volume_attributes_classes: k8s_openapi::api::storage::v1alpha1::VolumeAttributesClass, "volumeattributesclasses", cluster;
    }
    storage_v1beta1 => StorageV1beta1, "storage.k8s.io", "v1beta1" {
        volume_attributes_classes: k8s_openapi::api::storage::v1beta1::VolumeAttributesClass, "volumeattributesclasses", cluster;
    }
    storagemigration_v1alpha1 => StoragemigrationV1alpha1, "storagemigration.k8s.io", "v1alpha1" {
        storage_version_migrations: k8s_openapi::api::storagemigration::v1alpha1::StorageVersionMigration, "storageversionmigrations", cluster;
    }
}
