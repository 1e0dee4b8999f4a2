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

use std::sync::Arc;

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

#[inline]
fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t')
}

#[inline]
fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(&c) = b.get(i) {
        if !is_ws(c) {
            break;
        }
        i += 1;
    }
    i
}

fn expect(b: &[u8], i: usize, c: u8, message: &'static str) -> Result<()> {
    if b.get(i) == Some(&c) { Ok(()) } else { Err(ScanError::at(message, i)) }
}

/// A member's key (content between the quotes, and whether it has escapes) and where its value
/// starts; `i` is at the key's opening quote.
fn member_head(b: &[u8], i: usize) -> Result<(&[u8], bool, usize)> {
    expect(b, i, b'"', "expected a key")?;
    let (key_end, escaped) = string_end(b, i)?;
    let colon = ws(b, key_end);
    expect(b, colon, b':', "expected ':' after a key")?;
    let value = ws(b, colon + 1);
    if value >= b.len() {
        return Err(ScanError::at("unexpected end after ':'", value));
    }
    Ok((&b[i + 1..key_end - 1], escaped, value))
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The bytes of `w` equal to `byte`, as their high bits (exact for the lowest one; a higher
/// false positive may follow a true one, and only the lowest is used).
#[inline(always)]
fn bytes_equal(w: u64, byte: u8) -> u64 {
    let x = w ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The 8 bytes at `j`, if there are 8.
#[inline(always)]
fn word(b: &[u8], j: usize) -> Option<u64> {
    let chunk: [u8; 8] = b.get(j..j + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// The end (after the closing quote) of the string at `b[i] == '"'`, and whether it has escapes.
#[inline]
fn string_end(b: &[u8], i: usize) -> Result<(usize, bool)> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        // Eight bytes at a time up to the next quote or backslash.
        while let Some(w) = word(b, j) {
            let hits = bytes_equal(w, b'"') | bytes_equal(w, b'\\');
            if hits != 0 {
                j += (hits.trailing_zeros() / 8) as usize;
                break;
            }
            j += 8;
        }
        match b.get(j) {
            Some(b'"') => return Ok((j + 1, escaped)),
            Some(b'\\') => {
                escaped = true;
                j += 2;
            }
            Some(_) => j += 1,
            None => return Err(ScanError::at("unterminated string", i)),
        }
    }
}

/// The next quote or bracket at or after `j` (or `b.len()`).
#[inline(always)]
fn next_structural(b: &[u8], mut j: usize) -> usize {
    while let Some(w) = word(b, j) {
        // `[`/`]` become `{`/`}` with bit 5 set; no other byte does.
        let folded = w | (ONES * 0x20);
        let hits = bytes_equal(w, b'"') | bytes_equal(folded, b'{') | bytes_equal(folded, b'}');
        if hits != 0 {
            return j + (hits.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    while let Some(&c) = b.get(j) {
        if CLASS[c as usize] != 0 {
            break;
        }
        j += 1;
    }
    j
}

/// Byte classes of [`skip_container`]'s scan: 0 for bytes without structure.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'"' as usize] = 1;
    t[b'{' as usize] = 2;
    t[b'[' as usize] = 3;
    t[b'}' as usize] = 4;
    t[b']' as usize] = 5;
    t
};

/// The end of the value starting at `b[i]` (not whitespace).
fn skip_value(b: &[u8], i: usize) -> Result<usize> {
    match b.get(i) {
        Some(b'"') => string_end(b, i).map(|(end, _)| end),
        Some(b'{') | Some(b'[') => skip_container(b, i),
        Some(b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
            let mut j = i + 1;
            while let Some(&c) = b.get(j) {
                if matches!(c, b',' | b'}' | b']' | b':' | b'"' | b'{' | b'[') || is_ws(c) {
                    break;
                }
                j += 1;
            }
            Ok(j)
        }
        Some(_) => Err(ScanError::at("unexpected character", i)),
        None => Err(ScanError::at("unexpected end", i)),
    }
}

/// The end of the object or array at `b[i]`, brackets matched, strings skipped.
fn skip_container(b: &[u8], i: usize) -> Result<usize> {
    // One bit per open bracket: 1 for '{', 0 for '['.
    let mut stack: u128 = 0;
    let mut depth = 0usize;
    let mut j = i;
    loop {
        j = next_structural(b, j);
        let Some(&c) = b.get(j) else {
            return Err(ScanError::at("unterminated object or array", i));
        };
        match CLASS[c as usize] {
            1 => {
                j = string_end(b, j)?.0;
                continue;
            }
            2 | 3 => {
                if depth >= MAX_DEPTH {
                    return Err(ScanError::at("nested too deeply", j));
                }
                stack = (stack << 1) | u128::from(c == b'{');
                depth += 1;
            }
            _ => {
                let object = stack & 1 == 1;
                if depth == 0 || object != (c == b'}') {
                    return Err(ScanError::at("mismatched bracket", j));
                }
                stack >>= 1;
                depth -= 1;
                if depth == 0 {
                    return Ok(j + 1);
                }
            }
        }
        j += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn decoder(paths: &[&[&str]]) -> Decoder {
        let paths: Vec<FieldPath> =
            paths.iter().map(|p| FieldPath::new(p.iter().copied()).unwrap()).collect();
        Decoder::new(Arc::new(DropTree::new(&paths)))
    }

    fn text(o: &ScannedObject, span: Span) -> &str {
        std::str::from_utf8(&o.bytes[span.range()]).unwrap()
    }

    #[test]
    fn finds_the_metadata_and_drops_managed_fields_in_one_pass() {
        let json = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-1","namespace":"team","uid":"u-1","resourceVersion":"42","generation":3,"labels":{"app":"web"},"annotations":{"a":"b"},"ownerReferences":[{"name":"rs"}],"finalizers":["f"],"managedFields":[{"manager":"m","fieldsV1":{"f:x":{}}}],"deletionTimestamp":"2026-01-01T00:00:00Z"},"spec":{"metadata":{"name":"inner"}}}"#;
        let o = decoder(&[&["metadata", "managedFields"]]).object(json).unwrap();
        let kept: Value = serde_json::from_slice(&o.bytes).unwrap();
        let mut expected: Value = serde_json::from_slice(json).unwrap();
        expected["metadata"].as_object_mut().unwrap().remove("managedFields");
        assert_eq!(kept, expected);
        assert_eq!(text(&o, o.meta.name), "web-1");
        assert_eq!(text(&o, o.meta.namespace), "team");
        assert_eq!(text(&o, o.meta.uid), "u-1");
        assert_eq!(text(&o, o.meta.resource_version), "42");
        assert_eq!(text(&o, o.meta.labels), r#"{"app":"web"}"#);
        assert_eq!(text(&o, o.meta.annotations), r#"{"a":"b"}"#);
        assert_eq!(text(&o, o.meta.owner_references), r#"[{"name":"rs"}]"#);
        assert_eq!(text(&o, o.meta.finalizers), r#"["f"]"#);
        assert_eq!(o.meta.generation, Some(3));
        assert!(o.meta.deleting);
        assert_eq!(o.meta.escaped, 0);
    }

    #[test]
    fn drops_first_middle_last_and_only_members() {
        let cases = [
            (r#"{"a":1,"b":2,"c":3}"#, &["a"][..], json!({"b":2,"c":3})),
            (r#"{"a":1,"b":2,"c":3}"#, &["b"][..], json!({"a":1,"c":3})),
            (r#"{"a":1,"b":2,"c":3}"#, &["c"][..], json!({"a":1,"b":2})),
            (r#"{ "a" : 1 , "b" : 2 }"#, &["a", "b"][..], json!({})),
            (r#"{"a":1}"#, &["a"][..], json!({})),
            (r#"{"a":{"x":[1,{"y":"}"}]},"b":"\"a\""}"#, &["a"][..], json!({"b":"\"a\""})),
        ];
        for (input, keys, expected) in cases {
            let paths: Vec<&[&str]> = keys.iter().map(std::slice::from_ref).collect();
            let o = decoder(&paths).object(input.as_bytes()).unwrap();
            let kept: Value = serde_json::from_slice(&o.bytes).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(kept, expected, "{input} without {keys:?}");
        }
    }

    #[test]
    fn drops_nested_paths_and_keeps_spans_right_after_the_cut() {
        let json = br#"{"metadata":{"managedFields":[{"m":1}],"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"big\":1}","keep":"x"},"name":"n"},"status":{"x":1}}"#;
        let o = decoder(&[
            &["metadata", "managedFields"],
            &["metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"],
            &["status"],
        ])
        .object(json)
        .unwrap();
        let kept: Value = serde_json::from_slice(&o.bytes).unwrap();
        assert_eq!(kept, json!({"metadata":{"annotations":{"keep":"x"},"name":"n"}}));
        assert_eq!(text(&o, o.meta.name), "n");
        assert_eq!(text(&o, o.meta.annotations), r#"{"keep":"x"}"#);
    }

    #[test]
    fn a_framed_event_is_scanned_up_to_its_metadata_only() {
        // kube-apiserver's shape: the object's end comes from the line; what follows metadata is
        // copied unread (a typed read would report the broken spec).
        let line = br#"{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"a","managedFields":[1]},"spec":{]}}"#;
        let ScannedEvent::Added(o) = decoder(&[&["metadata", "managedFields"]]).event(line).unwrap() else {
            panic!("not ADDED")
        };
        assert_eq!(o.bytes, br#"{"kind":"Pod","metadata":{"name":"a"},"spec":{]}"#);
        // Scanned whole (another shape), the same line is refused.
        let spaced = br#"{"type": "ADDED", "object": {"kind":"Pod","metadata":{"name":"a"},"spec":{]}}"#;
        assert!(decoder(&[]).event(spaced).is_err());
        // Dropping outside metadata needs the whole object: it is scanned, and refused.
        assert!(decoder(&[&["status"]]).event(line).is_err());
        // A truncated line does not look framed and fails the whole scan.
        assert!(decoder(&[]).event(&line[..line.len() - 1]).is_err());
    }

    #[test]
    fn flags_escaped_strings() {
        let json = br#"{"metadata":{"name":"a\u0062","resourceVersion":"1"}}"#;
        let o = decoder(&[]).object(json).unwrap();
        assert_eq!(o.meta.escaped, ESCAPED_NAME);
        assert_eq!(text(&o, o.meta.name), r"a\u0062");
    }

    #[test]
    fn reads_watch_events_of_every_type() {
        let mut d = decoder(&[&["metadata", "managedFields"]]);
        let line = br#"{"type":"MODIFIED","object":{"metadata":{"name":"a","managedFields":[]},"data":{}}}"#;
        match d.event(line).unwrap() {
            ScannedEvent::Modified(o) => assert_eq!(o.bytes, br#"{"metadata":{"name":"a"},"data":{}}"#),
            _ => panic!("expected MODIFIED"),
        }
        // The object first, the type after.
        let line = br#"{"object":{"metadata":{"name":"b"}},"type":"DELETED"}"#;
        assert!(matches!(d.event(line).unwrap(), ScannedEvent::Deleted(o) if text(&o, o.meta.name) == "b"));
        let line = br#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12","annotations":{"k8s.io/initial-events-end":"true"}}}}"#;
        match d.event(line).unwrap() {
            ScannedEvent::Bookmark(b) => assert_eq!(b.metadata.resource_version, "12"),
            _ => panic!("expected BOOKMARK"),
        }
        let line = br#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old","reason":"Expired","code":410}}"#;
        match d.event(line).unwrap() {
            ScannedEvent::Error(s) => assert_eq!(s.code, 410),
            _ => panic!("expected ERROR"),
        }
        assert!(d.event(br#"{"type":"NOPE","object":{}}"#).is_err());
        assert!(d.event(br#"{"type":"ADDED"}"#).is_err());
        assert!(d.event(br#"{"object":{}}"#).is_err());
    }

    #[test]
    fn reads_a_list_page() {
        let body = br#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"99","continue":"tok","remainingItemCount":3},"items":[{"metadata":{"name":"a","managedFields":[1]}},{"metadata":{"name":"b"}}]}"#;
        let mut names = Vec::new();
        let meta = decoder(&[&["metadata", "managedFields"]])
            .list(body, |o| names.push((text(&o, o.meta.name).to_string(), o.bytes.clone())))
            .unwrap();
        assert_eq!(
            meta,
            ListMeta { resource_version: Some("99".into()), continue_token: Some("tok".into()) }
        );
        assert_eq!(decoder(&[]).list_meta(body).unwrap(), meta);
        let items_first = br#"{"items":[{"metadata":{"name":"a"}}],"metadata":{"resourceVersion":"5"}}"#;
        assert_eq!(decoder(&[]).list_meta(items_first).unwrap().resource_version.as_deref(), Some("5"));
        assert_eq!(names[0], ("a".to_string(), br#"{"metadata":{"name":"a"}}"#.to_vec()));
        assert_eq!(names[1].0, "b");
        let empty = decoder(&[]).list(br#"{"metadata":{},"items":null}"#, |_| panic!("no items")).unwrap();
        assert_eq!(empty, ListMeta::default());
    }

    #[test]
    fn rejects_broken_structure() {
        let bad: &[&[u8]] = &[
            b"",
            b"[]",
            b"{",
            br#"{"a":[1,2}"#,
            br#"{"a":{"b":1]}"#,
            br#"{"a" 1}"#,
            br#"{"a":1 "b":2}"#,
            br#"{"a":"unterminated}"#,
            br#"{"metadata":{"name":5}}"#,
            br#"{"metadata":{"generation":"x"}}"#,
            br#"{"metadata":[]}"#,
            br#"{"a":1} x"#,
            b"{\"metadata\":{\"name\":\"\xff\"}}",
        ];
        for input in bad {
            assert!(decoder(&[]).object(input).is_err(), "{:?} was accepted", String::from_utf8_lossy(input));
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(decoder(&[]).object(deep.as_bytes()).is_err());
    }

    #[test]
    fn field_paths_that_the_cache_needs_are_refused() {
        assert!(FieldPath::new(["metadata"]).is_err());
        assert!(FieldPath::new(["metadata", "name"]).is_err());
        assert!(FieldPath::new(["metadata", "resourceVersion"]).is_err());
        assert!(FieldPath::new(Vec::<String>::new()).is_err());
        assert!(FieldPath::new(["status", ""]).is_err());
        assert_eq!(FieldPath::new(["metadata", "managedFields"]).unwrap(), FieldPath::managed_fields());
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z\"\\\\/\u{e9} ]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z]{1,3}|metadata|name|managedFields", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn remove_path(v: &mut Value, path: &[&str]) {
        match path {
            [last] => {
                if let Some(o) = v.as_object_mut() {
                    o.remove(*last);
                }
            }
            [first, rest @ ..] => {
                if let Some(inner) = v.get_mut(*first) {
                    remove_path(inner, rest);
                }
            }
            [] => {}
        }
    }

    proptest! {
        /// Against serde_json: the kept bytes parse to the input minus the dropped members, and
        /// the metadata spans hold what a parser finds there.
        #[test]
        fn scanning_matches_a_json_parser(
            mut object in proptest::collection::btree_map("[a-z]{1,3}|spec|status", arb_json(), 0..4),
            name in "[a-z0-9.-]{0,10}",
            labels in proptest::collection::btree_map("[a-z/.]{1,6}", "[a-z]{0,4}", 0..3),
            extra in arb_json(),
            pretty in any::<bool>(),
        ) {
            object.insert("metadata".into(), json!({
                "managedFields": extra.clone(), "name": name, "labels": labels, "resourceVersion": "7", "x": extra,
            }));
            let value = Value::Object(object.into_iter().collect());
            let input = if pretty { serde_json::to_vec_pretty(&value) } else { serde_json::to_vec(&value) }.unwrap();
            let drops: &[&[&str]] = &[&["metadata", "managedFields"], &["status"], &["spec", "name"]];
            let o = decoder(drops).object(&input).unwrap();
            let mut expected = value.clone();
            for path in drops {
                remove_path(&mut expected, path);
            }
            let kept: Value = serde_json::from_slice(&o.bytes).unwrap();
            prop_assert_eq!(kept, expected);
            prop_assert_eq!(text(&o, o.meta.name), value["metadata"]["name"].as_str().unwrap());
            let labels_kept: Value = serde_json::from_slice(&o.bytes[o.meta.labels.range()]).unwrap();
            prop_assert_eq!(&labels_kept, &value["metadata"]["labels"]);
            // As a watch event: the framed line (compact) and a whole scan (spaced) agree.
            let compact = [&br#"{"type":"MODIFIED","object":"#[..], &input, b"}"].concat();
            let spaced = [&br#"{"type": "MODIFIED", "object": "#[..], &input, b" }\n"].concat();
            for line in [compact, spaced] {
                let ScannedEvent::Modified(e) = decoder(drops).event(&line).unwrap() else { panic!("not MODIFIED") };
                prop_assert_eq!(&e.bytes, &o.bytes);
                prop_assert_eq!(&e.meta, &o.meta);
            }
            // Only metadata dropped: the framed line stops after metadata, with the same result.
            let meta_only: &[&[&str]] = &[&["metadata", "managedFields"]];
            let whole = decoder(meta_only).object(&input).unwrap();
            let line = [&br#"{"type":"ADDED","object":"#[..], &input, b"}"].concat();
            let ScannedEvent::Added(framed) = decoder(meta_only).event(&line).unwrap() else { panic!("not ADDED") };
            prop_assert_eq!(&framed.bytes, &whole.bytes);
            prop_assert_eq!(&framed.meta, &whole.meta);
        }

        /// Arbitrary bytes and mutated objects give an error or an object, never a panic; what
        /// is accepted is kept as valid UTF-8.
        #[test]
        fn no_input_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), cut in 0usize..400, byte in any::<u8>()) {
            let mut d = decoder(&[&["metadata", "managedFields"]]);
            let _ = d.object(&bytes);
            let _ = d.event(&bytes);
            let _ = d.list(&bytes, |_| {});
            let mut pod = br#"{"type":"ADDED","object":{"metadata":{"name":"a","labels":{"x":"y"},"managedFields":[{"m":"n"}]},"spec":{"c":[1,2,{"d":null}]}}}"#.to_vec();
            let at = cut % pod.len();
            pod[at] = byte;
            if let Ok(ScannedEvent::Added(o)) = d.event(&pod) {
                prop_assert!(std::str::from_utf8(&o.bytes[o.meta.name.range()]).is_ok());
            }
            pod.truncate(at);
            let _ = d.event(&pod);
        }
    }
}
