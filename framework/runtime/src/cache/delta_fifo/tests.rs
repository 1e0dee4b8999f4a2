//! Each invariant of the DeltaFIFO, and a model-based property test.
//!
//! Mirrors client-go's `tools/cache/delta_fifo_test.go`.

use std::time::Duration;

use super::*;
use proptest::prelude::*;

#[derive(Debug, PartialEq)]
struct Obj {
    name: String,
    v: u32,
}

impl CacheObject for Obj {
    fn namespace(&self) -> Option<&str> {
        Some("ns")
    }
    fn name(&self) -> &str {
        &self.name
    }
}

fn o(name: &str, v: u32) -> Arc<Obj> {
    Arc::new(Obj { name: name.into(), v })
}

fn kinds(deltas: &[Delta<Obj>]) -> Vec<(DeltaType, Option<u32>, bool)> {
    deltas.iter().map(|d| (d.kind, d.object.object().map(|o| o.v), is_tombstone(d))).collect()
}

#[tokio::test]
async fn keys_are_queued_once_and_deltas_accumulate_in_order() {
    let fifo = DeltaFifo::new(None);
    fifo.add(o("a", 1));
    fifo.add(o("b", 1));
    fifo.update(o("a", 2));
    assert_eq!(fifo.list_keys(), ["ns/a", "ns/b"]);
    let (key, deltas) = fifo.pop().await.unwrap();
    assert_eq!(key, "ns/a");
    assert_eq!(kinds(&deltas), [(DeltaType::Added, Some(1), false), (DeltaType::Updated, Some(2), false)]);
    // Invariant 3: after the pop, a new change starts a new list behind b.
    fifo.update(o("a", 3));
    assert_eq!(fifo.list_keys(), ["ns/b", "ns/a"]);
}

#[tokio::test]
async fn consecutive_deletes_keep_the_more_informative() {
    let store = Arc::new(Indexer::new());
    store.upsert(o("a", 1));
    let fifo = DeltaFifo::new(Some(store.clone() as Arc<dyn KnownObjects<Obj>>));
    fifo.delete(o("a", 5));
    fifo.replace(vec![]); // a known key missing from the relist: a tombstone
    let (_, deltas) = fifo.pop().await.unwrap();
    assert_eq!(kinds(&deltas), [(DeltaType::Deleted, Some(5), false)], "the object beats the tombstone");
    fifo.add_if_not_present(
        "ns/x".into(),
        vec![Delta {
            kind: DeltaType::Deleted,
            object: DeltaObject::DeletedFinalStateUnknown { key: "ns/x".into(), object: None },
        }],
    );
    let state_deltas = {
        fifo.delete(o("x", 9));
        fifo.pop().await.unwrap().1
    };
    assert_eq!(kinds(&state_deltas), [(DeltaType::Deleted, Some(9), false)]);
}

#[tokio::test]
async fn replace_queues_replaced_and_tombstones_for_missing_known_keys() {
    let store = Arc::new(Indexer::new());
    store.upsert(o("kept", 1));
    store.upsert(o("gone", 1));
    let fifo = DeltaFifo::new(Some(store.clone() as Arc<dyn KnownObjects<Obj>>));
    fifo.replace(vec![o("kept", 2), o("new", 1)]);
    let mut got = Vec::new();
    while !fifo.is_empty() {
        let (k, d) = fifo.pop().await.unwrap();
        got.push((k, kinds(&d)));
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            ("ns/gone".to_string(), vec![(DeltaType::Deleted, Some(1), true)]),
            ("ns/kept".to_string(), vec![(DeltaType::Replaced, Some(2), false)]),
            ("ns/new".to_string(), vec![(DeltaType::Replaced, Some(1), false)]),
        ]
    );
}

#[tokio::test]
async fn a_paged_relist_tombstones_only_once_finished() {
    let store = Arc::new(Indexer::new());
    store.upsert(o("kept", 1));
    store.upsert(o("gone", 1));
    let fifo = DeltaFifo::new(Some(store.clone() as Arc<dyn KnownObjects<Obj>>));
    let mut replace = fifo.begin_replace();
    replace.add_page(vec![o("kept", 2)]);
    replace.add_page(vec![o("new", 1)]);
    assert_eq!(fifo.list_keys(), ["ns/kept", "ns/new"], "no tombstone before the last page");
    // A relist that fails before its end queues no deletion.
    drop(replace);
    assert_eq!(fifo.len(), 2);
    let mut replace = fifo.begin_replace();
    replace.add_page(vec![o("kept", 3), o("new", 1)]);
    replace.finish();
    let (_, deltas) = fifo.pop().await.unwrap();
    assert_eq!(
        kinds(&deltas),
        [(DeltaType::Replaced, Some(2), false), (DeltaType::Replaced, Some(3), false)]
    );
    fifo.pop().await.unwrap();
    let (key, deltas) = fifo.pop().await.unwrap();
    assert_eq!((key.as_str(), kinds(&deltas)), ("ns/gone", vec![(DeltaType::Deleted, Some(1), true)]));
    assert!(fifo.has_synced());
}

#[tokio::test]
async fn wait_for_room_returns_once_the_consumer_caught_up() {
    let fifo = Arc::new(DeltaFifo::<Obj>::new(None));
    fifo.push_all((0..10).map(|i| (DeltaType::Added, o(&format!("k{i}"), 1))));
    let waiter = {
        let fifo = fifo.clone();
        tokio::spawn(async move { fifo.wait_for_room(3).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!waiter.is_finished(), "10 queued, room for 3 at most");
    let popped = fifo.pop_batch(6).await;
    assert_eq!(popped.len(), 6);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!waiter.is_finished(), "4 still queued");
    fifo.pop().await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), waiter).await.unwrap().unwrap();
    fifo.wait_for_room(3).await;
}

#[tokio::test]
async fn deleting_an_unknown_key_is_a_no_op() {
    let store: Arc<Indexer<Obj>> = Arc::new(Indexer::new());
    let fifo = DeltaFifo::new(Some(store as Arc<dyn KnownObjects<Obj>>));
    fifo.delete(o("ghost", 1));
    assert!(fifo.is_empty());
}

#[tokio::test]
async fn has_synced_after_the_initial_items_are_popped() {
    let fifo = DeltaFifo::new(None);
    assert!(!fifo.has_synced());
    fifo.replace(vec![o("a", 1), o("b", 1)]);
    assert!(!fifo.has_synced());
    fifo.pop().await.unwrap();
    assert!(!fifo.has_synced());
    fifo.update(o("c", 1));
    fifo.pop().await.unwrap();
    assert!(fifo.has_synced(), "only the initial items count");
}

#[tokio::test]
async fn resync_queues_sync_for_known_objects_without_pending_deltas() {
    let store = Arc::new(Indexer::new());
    store.upsert(o("a", 1));
    store.upsert(o("b", 1));
    let fifo = DeltaFifo::new(Some(store.clone() as Arc<dyn KnownObjects<Obj>>));
    fifo.update(o("a", 2));
    fifo.resync();
    let mut got = Vec::new();
    while !fifo.is_empty() {
        let (k, d) = fifo.pop().await.unwrap();
        got.push((k, kinds(&d)));
    }
    assert_eq!(
        got,
        [
            ("ns/a".to_string(), vec![(DeltaType::Updated, Some(2), false)]),
            ("ns/b".to_string(), vec![(DeltaType::Sync, Some(1), false)]),
        ]
    );
}

#[tokio::test]
async fn close_unblocks_pop_after_draining() {
    let fifo = Arc::new(DeltaFifo::<Obj>::new(None));
    let waiter = {
        let fifo = fifo.clone();
        tokio::spawn(async move { fifo.pop().await.map(|(k, _)| k) })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    fifo.add(o("a", 1));
    assert_eq!(waiter.await.unwrap().as_deref(), Some("ns/a"), "a waiting pop gets the new item");
    fifo.add(o("b", 1));
    fifo.close();
    assert_eq!(fifo.pop().await.map(|(k, _)| k).as_deref(), Some("ns/b"));
    assert!(fifo.pop().await.is_none());
    let blocked = {
        let fifo = fifo.clone();
        tokio::spawn(async move { fifo.pop().await.is_none() })
    };
    assert!(tokio::time::timeout(Duration::from_secs(1), blocked).await.unwrap().unwrap());
}

#[derive(Debug, Clone)]
enum Op {
    Add(u8, u32),
    Update(u8, u32),
    Delete(u8),
    Pop,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..5u8, 0..100u32).prop_map(|(k, v)| Op::Add(k, v)),
        (0..5u8, 0..100u32).prop_map(|(k, v)| Op::Update(k, v)),
        (0..5u8).prop_map(Op::Delete),
        Just(Op::Pop),
    ]
}

proptest! {
    /// Against a model: FIFO order of keys, no key twice, every delta handed over exactly
    /// once and in order (with consecutive deletions collapsed).
    #[test]
    fn delta_fifo_matches_a_model(ops in proptest::collection::vec(op(), 0..80)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let fifo = DeltaFifo::new(None);
        let mut queue: VecDeque<String> = VecDeque::new();
        let mut items: std::collections::HashMap<String, Vec<(DeltaType, u32)>> = std::collections::HashMap::new();
        for op in ops {
            match op {
                Op::Add(k, v) | Op::Update(k, v) => {
                    let kind = if matches!(op, Op::Add(..)) { DeltaType::Added } else { DeltaType::Updated };
                    let obj = o(&format!("k{k}"), v);
                    let key = obj.key();
                    if kind == DeltaType::Added { fifo.add(obj) } else { fifo.update(obj) }
                    let list = items.entry(key.clone()).or_default();
                    if list.is_empty() { queue.push_back(key); }
                    list.push((kind, v));
                }
                Op::Delete(k) => {
                    let obj = o(&format!("k{k}"), 1000);
                    let key = obj.key();
                    fifo.delete(obj);
                    if let Some(list) = items.get_mut(&key) {
                        if list.last().map(|d| d.0) == Some(DeltaType::Deleted) {
                            list.pop();
                        }
                        list.push((DeltaType::Deleted, 1000));
                    }
                }
                Op::Pop => {
                    let expected = queue.pop_front();
                    let got = if expected.is_some() { rt.block_on(fifo.pop()) } else { None };
                    match (expected, got) {
                        (Some(k), Some((gk, deltas))) => {
                            prop_assert_eq!(&gk, &k);
                            let model = items.remove(&k).unwrap();
                            let got: Vec<(DeltaType, u32)> = deltas.iter().map(|d| (d.kind, d.object.object().unwrap().v)).collect();
                            prop_assert_eq!(got, model);
                        }
                        (None, None) => prop_assert!(fifo.is_empty()),
                        other => prop_assert!(false, "mismatch {:?}", other.0),
                    }
                }
            }
            prop_assert_eq!(fifo.list_keys(), queue.iter().cloned().collect::<Vec<_>>());
        }
    }
}
