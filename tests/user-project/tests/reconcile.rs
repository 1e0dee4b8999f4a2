//! The reconciler, unit-tested through krust::testing: an in-process API server, no manager.

use krust::{k8s_openapi::api::core::v1::ConfigMap, prelude::*, testing::TestEnv};
use user_project::{Backup, BackupReconciler, BackupSpec, Error};

fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.into());
    cm.metadata.namespace = Some("default".into());
    cm.data = Some(data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    cm
}

fn backup(name: &str, source: &str) -> Backup {
    let mut backup = Backup::new(name, BackupSpec { config_map: source.into() });
    backup.metadata.namespace = Some("default".into());
    backup
}

#[tokio::test]
async fn a_backup_copies_its_config_map_and_reports_it() {
    let env = TestEnv::start().await.unwrap();
    env.install_crd::<Backup>().await.unwrap();
    env.create(&config_map("settings", &[("a", "1"), ("b", "2")])).await.unwrap();
    let created = env.create(&backup("nightly", "settings")).await.unwrap();

    let action = env.reconcile(&BackupReconciler, Request::new("default", "nightly")).await.unwrap();
    assert_eq!(action, Action::done());

    let copy = env.clientset().core_v1().config_maps("default").get("nightly-copy", &GetOptions::default()).await.unwrap();
    assert_eq!(copy.data.unwrap().len(), 2);
    assert_eq!(copy.metadata.owner_references.unwrap()[0].uid, created.uid().unwrap());
    let backup = env.clientset().typed::<Backup>(Some("default")).get("nightly", &GetOptions::default()).await.unwrap();
    assert_eq!(backup.status.unwrap().keys, 2);
}

#[tokio::test]
async fn a_missing_source_is_a_terminal_error() {
    let env = TestEnv::start().await.unwrap();
    env.install_crd::<Backup>().await.unwrap();
    env.create(&backup("orphan", "absent")).await.unwrap();
    let error = env.reconcile(&BackupReconciler, Request::new("default", "orphan")).await.unwrap_err();
    assert!(matches!(error, Error::Missing(_)), "{error}");
    assert!(BackupReconciler.is_terminal(&error));
}

#[test]
fn the_crd_comes_from_the_rust_type() {
    let crd = Backup::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("backups.backups.example.com"));
    assert_eq!(crd.spec.scope, "Namespaced");
    let schema = krust::serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
    assert!(schema.to_string().contains("configMap"), "{schema}");
}
