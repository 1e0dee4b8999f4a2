//! The request builder: paths, parameters, headers, and what it refuses.
//!
//! Mirrors client-go's `rest` request tests.

use super::*;

fn client(gv: Option<GroupVersion>) -> RestClient {
    let mut config = Config::new("https://example.test:6443/prefix".parse().unwrap());
    config.tls.insecure_skip_verify = true;
    match gv {
        Some(gv) => RestClient::new(&config.with_group_version(gv)).unwrap(),
        None => RestClient::unversioned(&config).unwrap(),
    }
}

#[test]
fn builds_paths_like_client_go() {
    let core = client(Some(GroupVersion::gv("", "v1")));
    assert_eq!(
        core.get().namespace("default").resource("pods").name("test").path(),
        "/api/v1/namespaces/default/pods/test"
    );
    assert_eq!(core.get().resource("nodes").path(), "/api/v1/nodes");
    assert_eq!(core.get().namespace("").resource("pods").path(), "/api/v1/pods");
    assert_eq!(
        core.put().namespace("ns").resource("pods").name("p").sub_resource("status").path(),
        "/api/v1/namespaces/ns/pods/p/status"
    );
    let apps = client(Some(GroupVersion::gv("apps", "v1")));
    assert_eq!(
        apps.get().namespace("a").resource("deployments").path(),
        "/apis/apps/v1/namespaces/a/deployments"
    );
    let raw = client(None);
    assert_eq!(raw.get().abs_path("/version").path(), "/version");
    let uri = raw.get().abs_path("/api").param("a", "b c").uri(&[("a".into(), "b c".into())]).unwrap();
    assert_eq!(uri.to_string(), "https://example.test:6443/prefix/api?a=b+c");
}

#[tokio::test]
async fn invalid_names_fail_at_send() {
    let core = client(Some(GroupVersion::gv("", "v1")));
    for bad in ["", ".", "..", "a/b", "a%2F"] {
        let err = core.get().resource("pods").name(bad).send().await.unwrap_err();
        assert!(matches!(err, Error::InvalidRequest(_)), "{bad:?}: {err}");
    }
}

#[test]
fn new_requires_a_group_version() {
    let config = Config::new("https://example.test".parse().unwrap());
    let err = RestClient::new(&config).unwrap_err();
    assert!(err.to_string().contains("group_version"), "{err}");
}

#[test]
fn go_durations() {
    assert_eq!(go_duration(Duration::from_secs(30)), "30s");
    assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
}
