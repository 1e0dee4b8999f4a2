//! Admission handlers (controller-runtime's `admission.CustomValidator`, `CustomDefaulter` and
//! `admission.Handler`): typed [`Validator`]s and [`Defaulter`]s for one kind, and raw
//! [`AdmissionHandler`]s for anything else. A typed handler never sees JSON; the server turns
//! its answer into an `AdmissionResponse` (a denial with its message, code and field; the JSON
//! patch of what a defaulter changed).

use std::marker::PhantomData;

use async_trait::async_trait;
use kube_core::{
    DynamicObject,
    admission::{AdmissionRequest, AdmissionResponse, Operation},
    response::{Status, StatusCause, StatusDetails},
};
use serde::{Serialize, de::DeserializeOwned};

/// Warnings returned to the client with an allowed (or denied) request (kubectl prints them).
pub type Warnings = Vec<String>;

/// Why a request is refused: the message, the HTTP code the API server returns (403 by
/// default, 422 with a field), and optionally the field at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// What the user reads after `admission webhook "…" denied the request:`.
    pub message: String,
    /// The HTTP status code for the client.
    pub code: u16,
    /// `Forbidden`, `Invalid`, …
    pub reason: String,
    /// The field at fault (`spec.replicas`), for `Invalid`.
    pub field: Option<String>,
}

impl Denial {
    /// A denial (403 Forbidden), as controller-runtime's `admission.Denied`.
    pub fn new(message: impl Into<String>) -> Self {
        Denial { message: message.into(), code: 403, reason: "Forbidden".into(), field: None }
    }

    /// A field that is not valid (422 Invalid, with the field as its cause).
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        Denial {
            message: format!("{field}: {message}"),
            code: 422,
            reason: "Invalid".into(),
            field: Some(field),
        }
    }

    /// The Status of the denial; an invalid field is described as `apierrors.NewInvalid` does
    /// (the object's kind and name, the field as the cause), so kubectl prints
    /// `The <Kind> "<name>" is invalid: <field>: <message>`.
    fn into_status(self, request: &AdmissionRequest<DynamicObject>) -> Status {
        let mut status = Status::failure(&self.message, &self.reason).with_code(self.code);
        if let Some(field) = self.field {
            let bare = self.message.strip_prefix(&format!("{field}: ")).unwrap_or(&self.message).to_string();
            status.details = Some(StatusDetails {
                name: request.name.clone(),
                group: request.kind.group.clone(),
                kind: request.kind.kind.clone(),
                uid: String::new(),
                causes: vec![StatusCause { reason: "FieldValueInvalid".into(), message: bare, field }],
                retry_after_seconds: 0,
            });
        }
        status
    }
}

impl From<String> for Denial {
    fn from(message: String) -> Self {
        Denial::new(message)
    }
}

impl From<&str> for Denial {
    fn from(message: &str) -> Self {
        Denial::new(message)
    }
}

/// Validates one kind on create, update and delete (controller-runtime's `CustomValidator`).
/// Every method allows by default; return warnings to allow with a message, a [`Denial`] to
/// refuse.
#[async_trait]
pub trait Validator<K>: Send + Sync + 'static {
    /// Whether the webhook configuration asks for deletes too (default: creates and updates
    /// only, as kubebuilder's `verbs=create;update`).
    const DELETE: bool = false;
    /// A new object.
    async fn validate_create(&self, _obj: &K) -> Result<Warnings, Denial> {
        Ok(Warnings::new())
    }
    /// A changed object, with what it was.
    async fn validate_update(&self, _old: &K, _new: &K) -> Result<Warnings, Denial> {
        Ok(Warnings::new())
    }
    /// An object about to be deleted.
    async fn validate_delete(&self, _obj: &K) -> Result<Warnings, Denial> {
        Ok(Warnings::new())
    }
}

/// Fills in defaults of one kind on create and update (controller-runtime's
/// `CustomDefaulter`): change the object in place; the server sends the JSON patch of what
/// changed.
#[async_trait]
pub trait Defaulter<K>: Send + Sync + 'static {
    /// Sets the defaults of `obj`.
    async fn default(&self, obj: &mut K) -> Result<(), Denial>;
}

/// Any admission request, untyped (controller-runtime's `admission.Handler`).
#[async_trait]
pub trait AdmissionHandler: Send + Sync + 'static {
    /// The answer to one request (build it with `AdmissionResponse::from(&request)`).
    async fn handle(&self, request: &AdmissionRequest<DynamicObject>) -> AdmissionResponse;
}

fn decode<K: DeserializeOwned>(obj: &DynamicObject) -> Result<K, String> {
    serde_json::to_value(obj)
        .and_then(serde_json::from_value)
        .map_err(|e| format!("the object cannot be read as {}: {e}", std::any::type_name::<K>()))
}

fn answer(request: &AdmissionRequest<DynamicObject>, result: Result<Warnings, Denial>) -> AdmissionResponse {
    match result {
        Ok(warnings) => {
            let mut response = AdmissionResponse::from(request);
            if !warnings.is_empty() {
                response.warnings = Some(warnings);
            }
            response
        }
        Err(denial) => {
            let mut response = AdmissionResponse::from(request);
            response.allowed = false;
            response.result = denial.into_status(request);
            response
        }
    }
}

fn missing(request: &AdmissionRequest<DynamicObject>, what: &str) -> AdmissionResponse {
    answer(
        request,
        Err(Denial {
            code: 400,
            reason: "BadRequest".into(),
            ..Denial::new(format!("the request has no {what}"))
        }),
    )
}

/// A [`Validator`] as an [`AdmissionHandler`].
pub(crate) struct Validating<K, V> {
    pub(crate) validator: V,
    pub(crate) kind: PhantomData<fn() -> K>,
}

#[async_trait]
impl<K, V> AdmissionHandler for Validating<K, V>
where
    K: DeserializeOwned + Send + Sync + 'static,
    V: Validator<K>,
{
    async fn handle(&self, request: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
        let typed = |o: &Option<DynamicObject>| o.as_ref().map(decode::<K>);
        let result = match request.operation {
            Operation::Create => match typed(&request.object) {
                Some(Ok(obj)) => self.validator.validate_create(&obj).await,
                Some(Err(e)) => Err(Denial { code: 400, reason: "BadRequest".into(), ..Denial::new(e) }),
                None => return missing(request, "object"),
            },
            Operation::Update => match (typed(&request.old_object), typed(&request.object)) {
                (Some(Ok(old)), Some(Ok(new))) => self.validator.validate_update(&old, &new).await,
                (Some(Err(e)), _) | (_, Some(Err(e))) => {
                    Err(Denial { code: 400, reason: "BadRequest".into(), ..Denial::new(e) })
                }
                _ => return missing(request, "object or oldObject"),
            },
            // The object being deleted comes as oldObject.
            Operation::Delete => match typed(&request.old_object) {
                Some(Ok(obj)) => self.validator.validate_delete(&obj).await,
                Some(Err(e)) => Err(Denial { code: 400, reason: "BadRequest".into(), ..Denial::new(e) }),
                None => return missing(request, "oldObject"),
            },
            Operation::Connect => Ok(Warnings::new()),
        };
        answer(request, result)
    }
}

/// A [`Defaulter`] as an [`AdmissionHandler`].
pub(crate) struct Defaulting<K, D> {
    pub(crate) defaulter: D,
    pub(crate) kind: PhantomData<fn() -> K>,
}

#[async_trait]
impl<K, D> AdmissionHandler for Defaulting<K, D>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    D: Defaulter<K>,
{
    async fn handle(&self, request: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
        if !matches!(request.operation, Operation::Create | Operation::Update) {
            return AdmissionResponse::from(request);
        }
        let Some(object) = &request.object else { return missing(request, "object") };
        let mut obj: K = match decode(object) {
            Ok(o) => o,
            Err(e) => {
                return answer(
                    request,
                    Err(Denial { code: 400, reason: "BadRequest".into(), ..Denial::new(e) }),
                );
            }
        };
        // The patch goes from the object as received to the defaulted one (so it applies to
        // what the API server holds, fields the type fills in on decoding included), without
        // removing what the Rust type does not know: a removal is kept only when the typed
        // object had the field before the defaulter ran.
        let (raw, before) = match (serde_json::to_value(object), serde_json::to_value(&obj)) {
            (Ok(raw), Ok(before)) => (raw, before),
            (Err(e), _) | (_, Err(e)) => {
                return answer(request, Err(Denial::new(format!("cannot encode the object: {e}"))));
            }
        };
        if let Err(denial) = self.defaulter.default(&mut obj).await {
            return answer(request, Err(denial));
        }
        let after = match serde_json::to_value(&obj) {
            Ok(v) => v,
            Err(e) => return answer(request, Err(Denial::new(format!("cannot encode the object: {e}")))),
        };
        let mut patch = json_patch::diff(&raw, &after);
        patch.0.retain(|op| match op {
            json_patch::PatchOperation::Remove(remove) => before.pointer(remove.path.as_str()).is_some(),
            _ => true,
        });
        if patch.0.is_empty() {
            return AdmissionResponse::from(request);
        }
        match AdmissionResponse::from(request).with_patch(patch) {
            Ok(response) => response,
            Err(e) => answer(request, Err(Denial::new(format!("cannot encode the patch: {e}")))),
        }
    }
}
