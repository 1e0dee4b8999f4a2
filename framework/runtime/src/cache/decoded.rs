//! The recently decoded typed objects of one informer, shared by its listers: a bounded set
//! (CLOCK eviction: an entry read since the hand last passed it gets a second chance), so that
//! a reconciler reading the same object twice, or two workers reading one object, decode it
//! once, while the cache's memory does not grow with reads.
//!
//! Invariants:
//! - at most `capacity` typed objects are held; with capacity 0 nothing is;
//! - an entry belongs to one cached version (the `Arc<Cached<K>>` it was decoded from): a newer
//!   version of the object is never answered with an older typed value;
//! - eviction drops the set's references only: a caller holding the typed `Arc` keeps it.
//!
//! Mirrors nothing in client-go (its cache keeps typed objects): the bounded set that keeps krust's typed reads cheap.

use std::{collections::HashMap, sync::Arc};

use parking_lot::Mutex;

use super::object::Cached;

/// The default number of typed objects an informer's listers keep decoded.
pub const DEFAULT_RECENTLY_DECODED: usize = 256;

struct Slot<K> {
    object: Arc<Cached<K>>,
    typed: Arc<K>,
    referenced: bool,
}

struct Ring<K> {
    slots: Vec<Slot<K>>,
    /// `Arc::as_ptr` of the slot's object -> slot index. The slot holds the object, so its
    /// address cannot be reused by another object while it is here.
    by_address: HashMap<usize, usize>,
    hand: usize,
}

/// The bounded set.
pub(crate) struct RecentlyDecoded<K> {
    capacity: usize,
    ring: Mutex<Ring<K>>,
}

fn address<K>(object: &Arc<Cached<K>>) -> usize {
    Arc::as_ptr(object) as usize
}

impl<K> RecentlyDecoded<K> {
    pub fn new(capacity: usize) -> Self {
        RecentlyDecoded {
            capacity,
            ring: Mutex::new(Ring { slots: Vec::new(), by_address: HashMap::new(), hand: 0 }),
        }
    }

    /// The typed value decoded from exactly this cached version, if it is held.
    pub fn get(&self, object: &Arc<Cached<K>>) -> Option<Arc<K>> {
        if self.capacity == 0 {
            return None;
        }
        let mut ring = self.ring.lock();
        let at = *ring.by_address.get(&address(object))?;
        let slot = ring.slots.get_mut(at)?;
        if !Arc::ptr_eq(&slot.object, object) {
            return None;
        }
        slot.referenced = true;
        Some(slot.typed.clone())
    }

    /// Remembers `typed` as the decoded value of `object`, evicting the next unreferenced entry
    /// when full.
    pub fn insert(&self, object: Arc<Cached<K>>, typed: Arc<K>) {
        if self.capacity == 0 {
            return;
        }
        let key = address(&object);
        let mut ring = self.ring.lock();
        if let Some(&at) = ring.by_address.get(&key) {
            // Another reader decoded it meanwhile.
            if let Some(slot) = ring.slots.get_mut(at) {
                slot.referenced = true;
            }
            return;
        }
        let slot = Slot { object, typed, referenced: false };
        if ring.slots.len() < self.capacity {
            let at = ring.slots.len();
            ring.slots.push(slot);
            ring.by_address.insert(key, at);
            return;
        }
        let evicted = loop {
            let at = ring.hand;
            ring.hand = (at + 1) % ring.slots.len();
            if ring.slots[at].referenced {
                ring.slots[at].referenced = false;
                continue;
            }
            let evicted = std::mem::replace(&mut ring.slots[at], slot);
            ring.by_address.remove(&address(&evicted.object));
            ring.by_address.insert(key, at);
            break evicted;
        };
        drop(ring);
        // Freed outside the lock (dropping a large typed object takes time).
        drop(evicted);
    }

    /// How many typed objects are held.
    pub fn len(&self) -> usize {
        self.ring.lock().slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(name: &str) -> Arc<Cached<String>> {
        Arc::new(Cached::from_json(format!(r#"{{"metadata":{{"name":"{name}"}}}}"#).as_bytes()).unwrap())
    }

    #[test]
    fn holds_at_most_its_capacity_and_gives_referenced_entries_a_second_chance() {
        let set = RecentlyDecoded::new(2);
        let (a, b, c) = (cached("a"), cached("b"), cached("c"));
        set.insert(a.clone(), Arc::new("A".to_string()));
        set.insert(b.clone(), Arc::new("B".to_string()));
        assert_eq!(set.get(&a).as_deref().map(String::as_str), Some("A"));
        set.insert(c.clone(), Arc::new("C".to_string()));
        assert_eq!(set.len(), 2);
        assert!(set.get(&a).is_some(), "a was read: second chance");
        assert!(set.get(&b).is_none(), "b was evicted");
        assert!(set.get(&c).is_some());
    }

    #[test]
    fn answers_only_for_the_version_it_decoded() {
        let set = RecentlyDecoded::new(4);
        let old = cached("a");
        set.insert(old.clone(), Arc::new("old".to_string()));
        let new = cached("a");
        assert!(set.get(&new).is_none());
        assert!(set.get(&old).is_some());
    }

    #[test]
    fn eviction_leaves_callers_their_value_and_capacity_zero_keeps_nothing() {
        let set = RecentlyDecoded::new(1);
        let a = cached("a");
        let typed = Arc::new("A".to_string());
        set.insert(a.clone(), typed.clone());
        set.insert(cached("b"), Arc::new("B".to_string()));
        assert_eq!(Arc::strong_count(&typed), 1, "only the caller holds it now");
        let none = RecentlyDecoded::new(0);
        none.insert(a.clone(), typed);
        assert_eq!((none.len(), none.get(&a)), (0, None));
    }
}
