//! The resource lock: a `coordination.k8s.io/v1` Lease holding the leader election record
//! (client-go's `resourcelock.LeaseLock`).

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use krust_client::{Clientset, CreateOptions, Error, GetOptions, TypedClient, UpdateOptions};

/// What a lease says about its leader (client-go's `LeaderElectionRecord`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderElectionRecord {
    /// The leader's identity; empty when released.
    pub holder_identity: String,
    /// How long the lease lasts without renewal, in seconds.
    pub lease_duration_seconds: i32,
    /// When the current leader acquired it.
    pub acquire_time: Option<Timestamp>,
    /// When it was last renewed.
    pub renew_time: Option<Timestamp>,
    /// How many times the leader changed.
    pub leader_transitions: i32,
}

impl LeaderElectionRecord {
    fn from_lease(lease: &Lease) -> Self {
        let spec = lease.spec.clone().unwrap_or_default();
        LeaderElectionRecord {
            holder_identity: spec.holder_identity.unwrap_or_default(),
            lease_duration_seconds: spec.lease_duration_seconds.unwrap_or_default(),
            acquire_time: spec.acquire_time.map(|t| t.0),
            renew_time: spec.renew_time.map(|t| t.0),
            leader_transitions: spec.lease_transitions.unwrap_or_default(),
        }
    }

    fn to_spec(&self) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.holder_identity.clone()),
            lease_duration_seconds: Some(self.lease_duration_seconds),
            acquire_time: self.acquire_time.map(MicroTime),
            renew_time: self.renew_time.map(MicroTime),
            lease_transitions: Some(self.leader_transitions),
            ..Default::default()
        }
    }
}

/// A Lease used as a leader election lock.
#[derive(Clone, Debug)]
pub struct LeaseLock {
    client: TypedClient<Lease>,
    name: String,
    namespace: String,
    identity: String,
}

impl LeaseLock {
    /// The Lease `namespace/name`, for the candidate `identity`.
    pub fn new(clientset: &Clientset, namespace: &str, name: &str, identity: &str) -> Self {
        LeaseLock {
            client: clientset.coordination_v1().leases(namespace),
            name: name.to_string(),
            namespace: namespace.to_string(),
            identity: identity.to_string(),
        }
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// `namespace/name` of the Lease.
    pub fn describe(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The record and the Lease it came from; `None` when there is no Lease.
    pub async fn get(&self) -> Result<Option<(LeaderElectionRecord, Lease)>, Error> {
        match self.client.get(&self.name, &GetOptions::default()).await {
            Ok(lease) => Ok(Some((LeaderElectionRecord::from_lease(&lease), lease))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the Lease with `record` (409 AlreadyExists when another candidate was faster).
    pub async fn create(&self, record: &LeaderElectionRecord) -> Result<Lease, Error> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                ..Default::default()
            },
            spec: Some(record.to_spec()),
        };
        self.client.create(&lease, &CreateOptions::default()).await
    }

    /// Replaces the record of `current` (the Lease as read: its resourceVersion makes a
    /// concurrent change fail with 409 Conflict).
    pub async fn update(&self, current: &Lease, record: &LeaderElectionRecord) -> Result<Lease, Error> {
        let mut lease = current.clone();
        lease.spec = Some(record.to_spec());
        self.client.update(&lease, &UpdateOptions::default()).await
    }
}
