//! The informer's decoder: one structural pass over a watch event, a list page or an object that
//! finds each object's span and the metadata the cache keeps, and copies the object once into a
//! buffer of its own, without the fields the informer drops (`metadata.managedFields`, the
//! paths of [`FieldPath`]s).
//!
//! Invariants (each has a test below):
//! - the bytes kept are the input with exactly the dropped members removed (their key, value and
//!   one separating comma), so they parse to the input's value minus those members;
//! - the spans found (name, namespace, uid, resourceVersion, labels, annotations, owner
//!   references, finalizers) point into the kept bytes and hold what a JSON parser would find
//!   at those paths; strings with escapes are flagged so that readers unescape them;
//! - the pass checks structure (strings closed, brackets matched, keys followed by `:`,
//!   members separated by `,`) and the UTF-8 validity of the metadata strings the cache keys
//!   objects by; numbers, literals and the UTF-8 of other strings are checked when the object
//!   is decoded (a typed read reports them); nesting deeper than [`MAX_DEPTH`] (serde_json's
//!   own limit) is an error;
//! - a watch event line in kube-apiserver's shape (`{"type":"T","object":{...}}`) gives the
//!   object's span by its framing: only the object's members up to `metadata` are scanned (all
//!   of them when fields outside `metadata` are dropped), the rest is copied as it is and
//!   checked when decoded. Other shapes are scanned whole; both give the same result for
//!   well-formed events;
//! - no input panics: every failure is a [`ScanError`].
//!
//! Nothing is parsed twice and nothing is allocated per event but the kept copy: the cut list
//! is a buffer the decoder reuses.
//!
//! Mirrors client-go's watch decoder and `runtime.Decoder` as the reflector uses them, in one pass.
//!
//! ```
//! use krust_runtime::cache::FieldPath;
//!
//! // What an informer may leave out of its cache, and what it may not.
//! assert!(FieldPath::new(["data"]).is_ok());
//! assert!(FieldPath::new(["metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"]).is_ok());
//! let refused = FieldPath::new(["metadata", "resourceVersion"]).unwrap_err();
//! assert!(refused.to_string().contains("the cache keys and versions objects by it"), "{refused}");
//! ```

use std::sync::Arc;

mod bytes;

use bytes::{expect, is_ws, member_head, skip_value, string_end, ws};
use kube_core::{Status, WatchEvent, watch::Bookmark};
use serde::Deserialize;

/// The deepest nesting accepted (serde_json's recursion limit: deeper objects could not be read
/// typed anyway).
pub const MAX_DEPTH: usize = 128;

/// Why bytes could not be scanned as a Kubernetes object, watch event or list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at byte {offset}")]
pub struct ScanError {
    message: &'static str,
    offset: usize,
}

impl ScanError {
    fn at(message: &'static str, offset: usize) -> Self {
        ScanError { message, offset }
    }

    /// As a `serde_json::Error`, the error type of `krust_client::Error::Decode`.
    pub(crate) fn into_json(self) -> serde_json::Error {
        <serde_json::Error as serde::de::Error>::custom(self)
    }
}

type Result<T> = std::result::Result<T, ScanError>;

/// A byte range of an object's kept JSON (`end` exclusive); empty when the field is absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// Bits of [`MetaSpans::escaped`]: which string fields hold JSON escapes.
pub(crate) const ESCAPED_NAME: u8 = 1;
pub(crate) const ESCAPED_NAMESPACE: u8 = 2;
pub(crate) const ESCAPED_UID: u8 = 4;
pub(crate) const ESCAPED_RESOURCE_VERSION: u8 = 8;

/// Where an object's metadata lies in its kept bytes. String spans hold the string's content
/// without quotes; the others the whole JSON value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MetaSpans {
    pub name: Span,
    pub namespace: Span,
    pub uid: Span,
    pub resource_version: Span,
    pub labels: Span,
    pub annotations: Span,
    pub owner_references: Span,
    pub finalizers: Span,
    pub generation: Option<i64>,
    pub deleting: bool,
    pub escaped: u8,
}

impl MetaSpans {
    fn shift(&mut self, cuts: &[(usize, usize)], origin: usize) {
        let adjust = |p: u32| -> u32 {
            let p = p as usize;
            let removed: usize = cuts.iter().take_while(|c| c.1 <= p).map(|c| c.1 - c.0).sum();
            (p - origin - removed) as u32
        };
        for span in [
            &mut self.name,
            &mut self.namespace,
            &mut self.uid,
            &mut self.resource_version,
            &mut self.labels,
            &mut self.annotations,
            &mut self.owner_references,
            &mut self.finalizers,
        ] {
            *span = if span.is_empty() {
                Span::default()
            } else {
                Span { start: adjust(span.start), end: adjust(span.end) }
            };
        }
    }
}

/// A path of object keys to drop before caching, e.g. `["metadata", "managedFields"]` or
/// `["metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"]`
/// (controller-runtime users do this with a cache `TransformFunc`). Dropping happens in the pass
/// that decodes each event, without a second rewrite of the bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldPath(Vec<String>);

/// Why a [`FieldPath`] cannot be dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot drop {path}: {reason}")]
pub struct FieldPathError {
    path: String,
    reason: &'static str,
}

impl FieldPath {
    /// The path of these keys, outermost first.
    pub fn new<S: Into<String>>(
        segments: impl IntoIterator<Item = S>,
    ) -> std::result::Result<Self, FieldPathError> {
        let segments: Vec<String> = segments.into_iter().map(Into::into).collect();
        let path = segments.join(".");
        let reason = match segments.as_slice() {
            [] => Some("the path is empty"),
            [m] if m == "metadata" => Some("the cache needs the object's metadata"),
            [m, f, ..]
                if m == "metadata"
                    && ["name", "namespace", "uid", "resourceVersion", "generation", "deletionTimestamp"]
                        .contains(&f.as_str()) =>
            {
                Some("the cache keys and versions objects by it")
            }
            _ if segments.iter().any(String::is_empty) => Some("a segment is empty"),
            _ => None,
        };
        match reason {
            Some(reason) => Err(FieldPathError { path, reason }),
            None => Ok(FieldPath(segments)),
        }
    }

    /// `metadata.managedFields`: server-side apply's bookkeeping, often a fifth of an object's
    /// bytes and rarely read by controllers.
    pub fn managed_fields() -> Self {
        FieldPath(vec!["metadata".into(), "managedFields".into()])
    }

    /// The keys, outermost first.
    pub fn segments(&self) -> &[String] {
        &self.0
    }
}

/// The dropped paths as a tree of keys.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct DropTree {
    children: Vec<DropNode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct DropNode {
    key: Box<str>,
    drop: bool,
    below: DropTree,
}

impl DropTree {
    pub fn new(paths: &[FieldPath]) -> Self {
        let mut root = DropTree::default();
        for path in paths {
            let mut node = &mut root;
            for (i, segment) in path.0.iter().enumerate() {
                let last = i + 1 == path.0.len();
                let at = match node.children.iter().position(|c| *c.key == **segment) {
                    Some(at) => at,
                    None => {
                        node.children.push(DropNode {
                            key: segment.as_str().into(),
                            drop: false,
                            below: DropTree::default(),
                        });
                        node.children.len() - 1
                    }
                };
                let child = &mut node.children[at];
                child.drop |= last;
                node = &mut child.below;
            }
        }
        root
    }

    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    fn child(&self, key: &[u8], escaped: bool) -> Option<&DropNode> {
        if self.children.is_empty() {
            return None;
        }
        if escaped {
            let key = unescape(key)?;
            return self.children.iter().find(|c| *c.key == *key);
        }
        self.children.iter().find(|c| c.key.as_bytes() == key)
    }
}

/// A JSON string's content (between the quotes, escapes included) unescaped.
fn unescape(content: &[u8]) -> Option<String> {
    let mut quoted = Vec::with_capacity(content.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(content);
    quoted.push(b'"');
    serde_json::from_slice(&quoted).ok()
}

/// One scanned object: its kept bytes and where its metadata lies in them.
#[derive(Debug)]
pub(crate) struct ScannedObject {
    pub bytes: Vec<u8>,
    pub meta: MetaSpans,
}

/// One scanned watch event.
pub(crate) enum ScannedEvent {
    Added(ScannedObject),
    Modified(ScannedObject),
    Deleted(ScannedObject),
    Bookmark(Bookmark),
    Error(Box<Status>),
}

impl ScannedEvent {
    /// As kube-core's event, each object turned into `T` by `f`.
    pub fn map<T>(self, f: impl FnOnce(ScannedObject) -> T) -> WatchEvent<T> {
        match self {
            ScannedEvent::Added(o) => WatchEvent::Added(f(o)),
            ScannedEvent::Modified(o) => WatchEvent::Modified(f(o)),
            ScannedEvent::Deleted(o) => WatchEvent::Deleted(f(o)),
            ScannedEvent::Bookmark(b) => WatchEvent::Bookmark(b),
            ScannedEvent::Error(s) => WatchEvent::Error(s),
        }
    }
}

/// A list's own metadata.
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    /// `metadata.resourceVersion`.
    #[serde(default)]
    pub resource_version: Option<String>,
    /// `metadata.continue`.
    #[serde(default, rename = "continue")]
    pub continue_token: Option<String>,
}

/// The informer's decoder: watch event lines and list pages into [`Cached`] objects, in one
/// pass each, dropping the configured fields. Reflectors use it; it is public for sources of
/// one's own (a recorded stream, a test fixture, a benchmark).
///
/// ```
/// use krust_runtime::cache::{Cached, FieldPath, scan::Decoder};
/// use kube_core::WatchEvent;
/// let mut decoder = Decoder::dropping(&[FieldPath::managed_fields()]);
/// let line = br#"{"type":"ADDED","object":{"metadata":{"name":"a","managedFields":[{}]},"data":{}}}"#;
/// let WatchEvent::Added(object) = decoder.watch_event::<serde_json::Value>(line).unwrap() else { panic!() };
/// assert_eq!(object.name(), "a");
/// assert_eq!(object.raw().as_ref(), br#"{"metadata":{"name":"a"},"data":{}}"#);
/// ```
///
/// [`Cached`]: super::Cached
#[derive(Debug, Default)]
pub struct Decoder {
    drops: Arc<DropTree>,
    cuts: Vec<(usize, usize)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    /// The object itself: its `metadata` is read.
    Top,
    /// `metadata`: its fields are recorded.
    Metadata,
    /// Anything below, entered only to drop a member.
    Other,
}

impl Decoder {
    pub(crate) fn new(drops: Arc<DropTree>) -> Self {
        Decoder { drops, cuts: Vec::new() }
    }

    /// A decoder dropping the members at `paths` of every object.
    pub fn dropping(paths: &[FieldPath]) -> Self {
        Self::new(Arc::new(DropTree::new(paths)))
    }

    /// One watch event line into kube-core's event of cached objects.
    pub fn watch_event<K>(&mut self, line: &[u8]) -> Result<WatchEvent<super::Cached<K>>> {
        self.event(line).map(|e| e.map(super::Cached::from_scanned))
    }

    /// One list page: its resourceVersion, continue token, and items.
    pub fn list_page<K>(&mut self, body: &[u8]) -> Result<(ListMeta, Vec<super::Cached<K>>)> {
        let mut items = Vec::new();
        let meta = self.list(body, |o| items.push(super::Cached::from_scanned(o)))?;
        Ok((meta, items))
    }

    /// One object (`{...}`, surrounded by whitespace at most).
    pub(crate) fn object(&mut self, input: &[u8]) -> Result<ScannedObject> {
        let start = ws(input, 0);
        if input.get(start) != Some(&b'{') {
            return Err(ScanError::at("expected an object", start));
        }
        let (end, object) = self.object_at(input, start, None)?;
        let rest = ws(input, end);
        if rest != input.len() {
            return Err(ScanError::at("trailing characters after the object", rest));
        }
        Ok(object)
    }

    /// A watch event line: `{"type": ..., "object": {...}}`.
    pub(crate) fn event(&mut self, line: &[u8]) -> Result<ScannedEvent> {
        if let Some(event) = self.framed_event(line) {
            return event;
        }
        let b = line;
        let mut i = ws(b, 0);
        expect(b, i, b'{', "expected a watch event object")?;
        i = ws(b, i + 1);
        let mut kind: Option<(usize, usize)> = None;
        let mut object: Option<(usize, usize, Option<ScannedObject>)> = None;
        if b.get(i) != Some(&b'}') {
            loop {
                let (key, key_escaped, value) = member_head(b, i)?;
                let key: &[u8] = if key_escaped { b"" } else { key };
                let end = match key {
                    b"type" => {
                        expect(b, value, b'"', "the event type is not a string")?;
                        let (end, _) = string_end(b, value)?;
                        kind = Some((value + 1, end - 1));
                        end
                    }
                    b"object" => {
                        let scan = match kind.map(|(s, e)| &b[s..e]) {
                            Some(b"BOOKMARK") | Some(b"ERROR") => false,
                            _ => b.get(value) == Some(&b'{'),
                        };
                        if scan {
                            let (end, o) = self.object_at(b, value, None)?;
                            object = Some((value, end, Some(o)));
                            end
                        } else {
                            let end = skip_value(b, value)?;
                            object = Some((value, end, None));
                            end
                        }
                    }
                    _ => skip_value(b, value)?,
                };
                i = ws(b, end);
                match b.get(i) {
                    Some(b',') => i = ws(b, i + 1),
                    Some(b'}') => break,
                    _ => return Err(ScanError::at("expected ',' or '}' in the watch event", i)),
                }
            }
        }
        let rest = ws(b, i + 1);
        if rest != b.len() {
            return Err(ScanError::at("trailing characters after the watch event", rest));
        }
        let Some((kind_start, kind_end)) = kind else {
            return Err(ScanError::at("the watch event has no type", 0));
        };
        let Some((start, end, scanned)) = object else {
            return Err(ScanError::at("the watch event has no object", 0));
        };
        let kind = &b[kind_start..kind_end];
        let whole = |scanned: Option<ScannedObject>, this: &mut Self| match scanned {
            Some(o) => Ok(o),
            None => this.object(&b[start..end]),
        };
        Ok(match kind {
            b"ADDED" => ScannedEvent::Added(whole(scanned, self)?),
            b"MODIFIED" => ScannedEvent::Modified(whole(scanned, self)?),
            b"DELETED" => ScannedEvent::Deleted(whole(scanned, self)?),
            b"BOOKMARK" => ScannedEvent::Bookmark(
                serde_json::from_slice(&b[start..end])
                    .map_err(|_| ScanError::at("the BOOKMARK object is not a bookmark", start))?,
            ),
            b"ERROR" => ScannedEvent::Error(Box::new(
                serde_json::from_slice(&b[start..end])
                    .map_err(|_| ScanError::at("the ERROR object is not a Status", start))?,
            )),
            _ => return Err(ScanError::at("unknown watch event type", kind_start)),
        })
    }

    /// Only the list's metadata (for its continue token before its items are scanned): the
    /// members before `metadata` are skipped, the rest is not read.
    pub(crate) fn list_meta(&self, body: &[u8]) -> Result<ListMeta> {
        let b = body;
        let mut i = ws(b, 0);
        expect(b, i, b'{', "expected a list object")?;
        i = ws(b, i + 1);
        if b.get(i) == Some(&b'}') {
            return Ok(ListMeta::default());
        }
        loop {
            let (key, key_escaped, value) = member_head(b, i)?;
            let end = skip_value(b, value)?;
            if !key_escaped && key == b"metadata" {
                return serde_json::from_slice::<Option<ListMeta>>(&b[value..end])
                    .map(Option::unwrap_or_default)
                    .map_err(|_| ScanError::at("the list's metadata is not a ListMeta", value));
            }
            i = ws(b, end);
            match b.get(i) {
                Some(b',') => i = ws(b, i + 1),
                Some(b'}') => return Ok(ListMeta::default()),
                _ => return Err(ScanError::at("expected ',' or '}' in the list", i)),
            }
        }
    }

    /// The event as kube-apiserver writes it, `{"type":"T","object":{...}}` on one line: the
    /// object's span is known from the framing, so only its metadata is scanned. `None` when the
    /// line has another shape (then it is scanned whole).
    fn framed_event(&mut self, line: &[u8]) -> Option<Result<ScannedEvent>> {
        const HEAD: &[u8] = b"{\"type\":\"";
        const OBJECT: &[u8] = b"\",\"object\":{";
        let rest = line.strip_prefix(HEAD)?;
        let (kind, prefix) = if rest.starts_with(b"MODIFIED") {
            (1, HEAD.len() + 8)
        } else if rest.starts_with(b"ADDED") {
            (0, HEAD.len() + 5)
        } else if rest.starts_with(b"DELETED") {
            (2, HEAD.len() + 7)
        } else {
            return None;
        };
        if !line[prefix..].starts_with(OBJECT) {
            return None;
        }
        let start = prefix + OBJECT.len() - 1;
        // The line ends with the object's `}` and then the event's.
        let mut last = line.len();
        while last > 0 && is_ws(line[last - 1]) {
            last -= 1;
        }
        if last < start + 2 || line[last - 1] != b'}' {
            return None;
        }
        let mut end = last - 1;
        while end > start && is_ws(line[end - 1]) {
            end -= 1;
        }
        if line[end - 1] != b'}' {
            return None;
        }
        Some(self.object_at(line, start, Some(end)).map(|(_, o)| match kind {
            0 => ScannedEvent::Added(o),
            1 => ScannedEvent::Modified(o),
            _ => ScannedEvent::Deleted(o),
        }))
    }

    /// A list (`{"metadata": {...}, "items": [...]}`): its metadata and each item, handed to
    /// `item` in order as soon as it is scanned.
    pub(crate) fn list(&mut self, body: &[u8], mut item: impl FnMut(ScannedObject)) -> Result<ListMeta> {
        let b = body;
        let mut i = ws(b, 0);
        expect(b, i, b'{', "expected a list object")?;
        i = ws(b, i + 1);
        let mut meta = ListMeta::default();
        if b.get(i) != Some(&b'}') {
            loop {
                let (key, key_escaped, value) = member_head(b, i)?;
                let key: &[u8] = if key_escaped { b"" } else { key };
                let end = match key {
                    b"metadata" => {
                        let end = skip_value(b, value)?;
                        meta = serde_json::from_slice::<Option<ListMeta>>(&b[value..end])
                            .map_err(|_| ScanError::at("the list's metadata is not a ListMeta", value))?
                            .unwrap_or_default();
                        end
                    }
                    b"items" => match b.get(value) {
                        Some(b'[') => {
                            let mut j = ws(b, value + 1);
                            if b.get(j) == Some(&b']') {
                                j + 1
                            } else {
                                loop {
                                    expect(b, j, b'{', "a list item is not an object")?;
                                    let (end, object) = self.object_at(b, j, None)?;
                                    item(object);
                                    j = ws(b, end);
                                    match b.get(j) {
                                        Some(b',') => j = ws(b, j + 1),
                                        Some(b']') => break j + 1,
                                        _ => return Err(ScanError::at("expected ',' or ']' in items", j)),
                                    }
                                }
                            }
                        }
                        Some(b'n') => skip_value(b, value)?,
                        _ => return Err(ScanError::at("the list's items are not an array", value)),
                    },
                    _ => skip_value(b, value)?,
                };
                i = ws(b, end);
                match b.get(i) {
                    Some(b',') => i = ws(b, i + 1),
                    Some(b'}') => break,
                    _ => return Err(ScanError::at("expected ',' or '}' in the list", i)),
                }
            }
        }
        let rest = ws(b, i + 1);
        if rest != b.len() {
            return Err(ScanError::at("trailing characters after the list", rest));
        }
        Ok(meta)
    }

    /// Scans the object at `b[start] == '{'` and copies what is kept.
    ///
    /// `known_end`: where the object ends, when the framing says so (a watch event line). Then,
    /// unless fields outside `metadata` are dropped, the scan stops after `metadata`: the rest
    /// is copied as it is, and checked only when the object is decoded.
    fn object_at(
        &mut self,
        b: &[u8],
        start: usize,
        known_end: Option<usize>,
    ) -> Result<(usize, ScannedObject)> {
        self.cuts.clear();
        let mut meta = MetaSpans::default();
        let drops = self.drops.clone();
        let stop_after_metadata = known_end.filter(|_| drops.children.iter().all(|c| &*c.key == "metadata"));
        let end = {
            let mut scan = Scan { b, cuts: &mut self.cuts, meta: &mut meta, stop_after_metadata };
            scan.object(start, Some(&drops), Level::Top, 1)?
        };
        if end - start > u32::MAX as usize {
            return Err(ScanError::at("the object exceeds 4 GiB", start));
        }
        let removed: usize = self.cuts.iter().map(|c| c.1 - c.0).sum();
        let mut bytes = Vec::with_capacity(end - start - removed);
        let mut from = start;
        for &(cut_start, cut_end) in &self.cuts {
            bytes.extend_from_slice(&b[from..cut_start]);
            from = cut_end;
        }
        bytes.extend_from_slice(&b[from..end]);
        meta.shift(&self.cuts, start);
        Ok((end, ScannedObject { bytes, meta }))
    }
}

struct Scan<'a, 'c> {
    b: &'a [u8],
    cuts: &'c mut Vec<(usize, usize)>,
    meta: &'c mut MetaSpans,
    /// The object's end, when the scan may stop once `metadata` has been read.
    stop_after_metadata: Option<usize>,
}

impl Scan<'_, '_> {
    /// The object at `b[i] == '{'`: its end. Members named in `drops` are cut.
    fn object(
        &mut self,
        mut i: usize,
        drops: Option<&DropTree>,
        level: Level,
        depth: usize,
    ) -> Result<usize> {
        let b = self.b;
        if depth > MAX_DEPTH {
            return Err(ScanError::at("nested too deeply", i));
        }
        i = ws(b, i + 1);
        if b.get(i) == Some(&b'}') {
            return Ok(i + 1);
        }
        let mut kept_any = false;
        let mut comma_before = 0usize;
        loop {
            let key_start = i;
            let (key, key_escaped, value) = member_head(b, i)?;
            let node = drops.and_then(|d| d.child(key, key_escaped));
            let dropped = node.is_some_and(|n| n.drop);
            let below = node.map(|n| &n.below).filter(|t| !t.is_empty());
            let value_end = if dropped {
                skip_value(b, value)?
            } else {
                match level {
                    Level::Top if !key_escaped && key == b"metadata" => match b.get(value) {
                        Some(b'{') => self.object(value, below, Level::Metadata, depth + 1)?,
                        _ => {
                            let end = skip_value(b, value)?;
                            if &b[value..end] != b"null" {
                                return Err(ScanError::at("metadata is not an object", value));
                            }
                            end
                        }
                    },
                    Level::Metadata => {
                        let owned;
                        let key = if key_escaped {
                            owned = unescape(key).unwrap_or_default();
                            owned.as_bytes()
                        } else {
                            key
                        };
                        self.metadata_field(key, value, below, depth)?
                    }
                    _ => match (below, b.get(value)) {
                        (Some(below), Some(b'{')) => {
                            self.object(value, Some(below), Level::Other, depth + 1)?
                        }
                        _ => skip_value(b, value)?,
                    },
                }
            };
            if level == Level::Top
                && !dropped
                && !key_escaped
                && key == b"metadata"
                && let Some(end) = self.stop_after_metadata
                && value_end < end
            {
                return Ok(end);
            }
            let after = ws(b, value_end);
            let next = b.get(after).copied();
            if dropped {
                if kept_any {
                    self.cuts.push((comma_before, value_end));
                } else if next == Some(b',') {
                    self.cuts.push((key_start, ws(b, after + 1)));
                } else {
                    self.cuts.push((key_start, value_end));
                }
            } else {
                kept_any = true;
            }
            match next {
                Some(b',') => {
                    comma_before = after;
                    i = ws(b, after + 1);
                }
                Some(b'}') => return Ok(after + 1),
                _ => return Err(ScanError::at("expected ',' or '}' in an object", after)),
            }
        }
    }

    /// One member of `metadata`, its value at `value`: records what the cache keeps.
    fn metadata_field(
        &mut self,
        key: &[u8],
        value: usize,
        below: Option<&DropTree>,
        depth: usize,
    ) -> Result<usize> {
        let b = self.b;
        let string = |scan: &mut Self, bit: u8| -> Result<(usize, Span)> {
            match b.get(value) {
                Some(b'"') => {
                    let (end, escaped) = string_end(b, value)?;
                    if escaped {
                        scan.meta.escaped |= bit;
                    }
                    if std::str::from_utf8(&b[value + 1..end - 1]).is_err() {
                        return Err(ScanError::at("invalid UTF-8 in a metadata string", value));
                    }
                    Ok((end, Span { start: (value + 1) as u32, end: (end - 1) as u32 }))
                }
                _ => {
                    let end = skip_value(b, value)?;
                    if &b[value..end] == b"null" {
                        Ok((end, Span::default()))
                    } else {
                        Err(ScanError::at("a metadata string field is not a string", value))
                    }
                }
            }
        };
        let whole = |scan: &mut Self, open: u8| -> Result<(usize, Span)> {
            let end = match (below, b.get(value)) {
                (Some(below), Some(b'{')) if open == b'{' => {
                    scan.object(value, Some(below), Level::Other, depth + 1)?
                }
                _ => skip_value(b, value)?,
            };
            match b.get(value) {
                Some(c) if *c == open => Ok((end, Span { start: value as u32, end: end as u32 })),
                _ if &b[value..end] == b"null" => Ok((end, Span::default())),
                _ => Err(ScanError::at("a metadata field has the wrong JSON type", value)),
            }
        };
        let (end, span) = match key {
            b"name" => {
                let (end, span) = string(self, ESCAPED_NAME)?;
                self.meta.name = span;
                return Ok(end);
            }
            b"namespace" => string(self, ESCAPED_NAMESPACE)?,
            b"uid" => string(self, ESCAPED_UID)?,
            b"resourceVersion" => string(self, ESCAPED_RESOURCE_VERSION)?,
            b"labels" | b"annotations" => whole(self, b'{')?,
            b"ownerReferences" | b"finalizers" => whole(self, b'[')?,
            b"generation" => {
                let end = skip_value(b, value)?;
                let text = &b[value..end];
                if text != b"null" {
                    let number = std::str::from_utf8(text).ok().and_then(|t| t.parse::<i64>().ok());
                    self.meta.generation = Some(
                        number
                            .ok_or_else(|| ScanError::at("metadata.generation is not an integer", value))?,
                    );
                }
                return Ok(end);
            }
            b"deletionTimestamp" => {
                let end = skip_value(b, value)?;
                self.meta.deleting = &b[value..end] != b"null";
                return Ok(end);
            }
            _ => {
                return match (below, b.get(value)) {
                    (Some(below), Some(b'{')) => self.object(value, Some(below), Level::Other, depth + 1),
                    _ => skip_value(b, value),
                };
            }
        };
        match key {
            b"namespace" => self.meta.namespace = span,
            b"uid" => self.meta.uid = span,
            b"resourceVersion" => self.meta.resource_version = span,
            b"labels" => self.meta.labels = span,
            b"annotations" => self.meta.annotations = span,
            b"ownerReferences" => self.meta.owner_references = span,
            _ => self.meta.finalizers = span,
        }
        Ok(end)
    }
}

#[cfg(test)]
mod tests;
