//! The only controllers the server runs, as kube-controller-manager would: namespace lifecycle
//! (a deleted namespace is Terminating until everything in it is gone, then it is removed) and
//! the garbage collector (dependents whose owners are all gone are deleted; `foregroundDeletion`
//! deletes dependents before the owner; `orphan` removes the owner reference from dependents).
//!
//! Mirrors kube-controller-manager's namespace and garbage-collector controllers.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    handlers::delete_object,
    object::{Stored, meta_mut},
    server::Server,
    status::ApiError,
    store::Write,
};

pub(crate) async fn run(server: Arc<Server>, stop: CancellationToken) {
    let mut seen = u64::MAX;
    loop {
        let notified = server.store.changed.notified();
        let deletions = server.store.deletions();
        if deletions != seen {
            seen = deletions;
            reconcile(&server);
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = notified => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => { seen = u64::MAX; }
        }
        // Let bursts of writes settle.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn reconcile(server: &Server) {
    let tables = server.store.tables();
    // Every object with owners or pending finalizers, once.
    let mut all: Vec<(Arc<str>, String, Stored)> = Vec::new();
    for t in &tables {
        for (k, s) in server.store.table(t).iter() {
            all.push((t.clone(), k.clone(), s.clone()));
        }
    }
    for (table, _, owner) in all.iter().filter(|(_, _, s)| s.summary.deleting) {
        let uid = &owner.summary.uid;
        let dependents: Vec<&(Arc<str>, String, Stored)> =
            all.iter().filter(|(_, _, s)| s.summary.owners.iter().any(|o| o == uid)).collect();
        let has = |f: &str| owner.summary.finalizers.iter().any(|x| x == f);
        if has("orphan") {
            for (t, k, _) in &dependents {
                let _ = server.store.write::<ApiError>(t, k, |cur, _| {
                    let Some(cur) = cur else { return Ok(Write::Unchanged(owner.clone())) };
                    let mut v = cur.value();
                    if let Some(refs) = v["metadata"]["ownerReferences"].as_array_mut() {
                        refs.retain(|r| r["uid"].as_str() != Some(uid));
                    }
                    meta_mut(&mut v).remove("resourceVersion");
                    Ok(Write::Put(v))
                });
            }
            remove_finalizer(server, table, owner, "orphan");
        } else if has("foregroundDeletion") {
            if dependents.is_empty() {
                remove_finalizer(server, table, owner, "foregroundDeletion");
            } else {
                for (t, _, d) in &dependents {
                    if !d.summary.deleting
                        && let Some(def) = server.by_storage(t)
                    {
                        let _ = delete_object(
                            server,
                            &def,
                            &d.summary.namespace,
                            &d.summary.name,
                            Some("Foreground"),
                        );
                    }
                }
            }
        }
    }
    // Dependents whose owners are all gone.
    for (t, k, _) in all.iter().filter(|(_, _, s)| !s.summary.owners.is_empty() && !s.summary.deleting) {
        // Decide on the current version: the steps above may have changed it (orphaning).
        let Some(s) = server.store.get(t, k) else { continue };
        if !s.summary.owners.is_empty()
            && !s.summary.deleting
            && s.summary.owners.iter().all(|uid| server.store.locate_uid(uid).is_none())
            && let Some(def) = server.by_storage(t)
        {
            let _ = delete_object(server, &def, &s.summary.namespace, &s.summary.name, None);
        }
    }
    // Terminating namespaces.
    for (_, s) in server.store.table("/namespaces").iter().filter(|(_, s)| s.summary.deleting) {
        let ns = &s.summary.name;
        let mut remaining = 0;
        for t in &tables {
            let Some(def) = server.by_storage(t) else { continue };
            if !def.namespaced {
                continue;
            }
            let prefix = format!("{ns}/");
            for (k, obj) in server.store.table(t).range(prefix.clone()..) {
                if !k.starts_with(&prefix) {
                    break;
                }
                remaining += 1;
                if !obj.summary.deleting {
                    let _ = delete_object(server, &def, ns, &obj.summary.name, None);
                }
            }
        }
        if remaining == 0 {
            let storage: Arc<str> = Arc::from("/namespaces");
            let _ = server.store.write::<ApiError>(&storage, ns, |cur, _| {
                let Some(cur) = cur else { return Ok(Write::Unchanged(s.clone())) };
                let mut v = cur.value();
                crate::object::set_path(&mut v, &["spec", "finalizers"], json!([]));
                Ok(if v["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty()) {
                    meta_mut(&mut v).remove("resourceVersion");
                    Write::Put(v)
                } else {
                    Write::Delete(v)
                })
            });
        }
    }
}

fn remove_finalizer(server: &Server, table: &Arc<str>, owner: &Stored, finalizer: &str) {
    let Some(def) = server.by_storage(table) else { return };
    let key = crate::object::key(&owner.summary.namespace, &owner.summary.name);
    let _ = server.store.write::<ApiError>(table, &key, |cur, _| {
        let Some(cur) = cur else { return Ok(Write::Unchanged(owner.clone())) };
        let mut v = cur.value();
        if let Some(f) = v["metadata"]["finalizers"].as_array_mut() {
            f.retain(|x| x.as_str() != Some(finalizer));
        }
        meta_mut(&mut v).remove("resourceVersion");
        let left = v["metadata"]["finalizers"].as_array().is_some_and(|f: &Vec<Value>| !f.is_empty());
        let _ = &def;
        Ok(if left { Write::Put(v) } else { Write::Delete(v) })
    });
}
