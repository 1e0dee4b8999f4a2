//! The query parameters every verb shares (`metav1.ListOptions`, `CreateOptions`,
//! `UpdateOptions`, `PatchOptions`, `DeleteOptions`), checked before anything runs: a value that
//! does not parse is 400, as kube-apiserver's parameter codec answers, and a `dryRun` other than
//! `All` is 422 — a request the server does not understand never writes.
//!
//! Mirrors apimachinery's `metav1` options conversion and `ValidateDryRun`.

use http::{Method, StatusCode};
use serde_json::json;

use crate::{
    http_util::parse_bool,
    server::Query,
    status::{ApiError, ApiResult},
};

/// Integer parameters, as Go's `strconv.ParseInt` reads them.
const INTEGERS: &[&str] = &["limit", "timeoutSeconds", "gracePeriodSeconds"];
/// Boolean parameters.
const BOOLEANS: &[&str] =
    &["watch", "allowWatchBookmarks", "sendInitialEvents", "force", "orphanDependents", "pretty"];

/// Checks the shared options of a request with this method.
pub(crate) fn check(query: &Query, method: &Method) -> ApiResult<()> {
    for (key, value) in &query.0 {
        let key = key.as_str();
        if INTEGERS.contains(&key) && !value.is_empty() && value.parse::<i64>().is_err() {
            return Err(ApiError::bad_request(format!(
                "invalid value for {key}: strconv.ParseInt: parsing {value:?}: invalid syntax"
            )));
        }
        if BOOLEANS.contains(&key) && parse_bool(value).is_none() {
            return Err(ApiError::bad_request(format!(
                "invalid value for {key}: strconv.ParseBool: parsing {value:?}: invalid syntax"
            )));
        }
    }
    let dry_run: Vec<&str> = query.0.iter().filter(|(k, _)| k == "dryRun").map(|(_, v)| v.as_str()).collect();
    if dry_run.iter().any(|v| *v != "All") {
        let values = dry_run.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ");
        return Err(invalid_options(
            method,
            "dryRun",
            format!("Unsupported value: []string{{{values}}}: supported values: \"All\""),
        ));
    }
    Ok(())
}

/// 422 for an options object, worded as kube-apiserver words it.
fn invalid_options(method: &Method, field: &str, message: String) -> ApiError {
    let kind = match *method {
        Method::POST => "CreateOptions",
        Method::PUT => "UpdateOptions",
        Method::PATCH => "PatchOptions",
        Method::DELETE => "DeleteOptions",
        _ => "ListOptions",
    };
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
        format!("{kind}.meta.k8s.io \"\" is invalid: {field}: {message}"),
    )
    .with_details(json!({
        "group": "meta.k8s.io",
        "kind": kind,
        "causes": [{"reason": "FieldValueNotSupported", "message": message, "field": field}],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_query(q: &str, method: Method) -> Option<u16> {
        check(&Query::parse(Some(q)), &method).err().map(|e| e.code.as_u16())
    }

    #[test]
    fn unparsable_options_are_refused() {
        assert_eq!(check_query("dryRun=Bogus", Method::POST), Some(422));
        assert_eq!(check_query("dryRun=All&dryRun=x", Method::PATCH), Some(422));
        assert_eq!(check_query("gracePeriodSeconds=abc", Method::DELETE), Some(400));
        assert_eq!(check_query("timeoutSeconds=abc", Method::GET), Some(400));
        assert_eq!(check_query("limit=ten", Method::GET), Some(400));
        assert_eq!(check_query("watch=maybe", Method::GET), Some(400));
        assert_eq!(check_query("dryRun=All&gracePeriodSeconds=0&limit=5&watch=1", Method::DELETE), None);
        assert_eq!(check_query("", Method::GET), None);
    }
}
