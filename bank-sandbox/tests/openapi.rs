//! The checked-in OpenAPI document matches the server: the same (method, path) pairs, and
//! the server serves that very document.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;

use bank_sandbox::bank::BankConfig;
use serde_json::Value;

fn documented() -> BTreeSet<(String, String)> {
    let doc: Value =
        serde_json::from_str(bank_sandbox::api::OPENAPI).expect("openapi.json is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut pairs = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            pairs.insert((method.clone(), path.clone()));
        }
    }
    pairs
}

#[test]
fn openapi_lists_exactly_the_served_routes() {
    let served: BTreeSet<(String, String)> = bank_sandbox::api::route_list()
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
    let documented = documented();
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(missing.is_empty(), "served but not documented: {missing:?}");
    assert!(extra.is_empty(), "documented but not served: {extra:?}");
}

#[test]
fn every_documented_operation_declares_its_responses_and_security() {
    let doc: Value = serde_json::from_str(bank_sandbox::api::OPENAPI).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["responses"].is_object(), "{method} {path}: responses");
            assert!(op["security"].is_array(), "{method} {path}: security");
            // Every refusal is the one JSON error shape, including the HTTP layer's.
            let responses = op["responses"].as_object().unwrap();
            for (status, response) in responses {
                if !status.starts_with('2') {
                    assert_eq!(
                        response["$ref"], "#/components/responses/Error",
                        "{method} {path}: {status} is not the error shape"
                    );
                }
            }
            if method == "post" {
                for status in ["413", "415"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path}: {status} undocumented"
                    );
                }
            }
            for param in path.split('/').filter(|s| s.starts_with('{')) {
                let name = param.trim_matches(|c| c == '{' || c == '}');
                let declared = op["parameters"]
                    .as_array()
                    .map(|ps| ps.iter().any(|p| p["name"] == name))
                    .unwrap_or(false);
                assert!(declared, "{method} {path}: parameter {name}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_serves_the_document_and_every_route() {
    let t = support::TestBank::start(support::Db::Sqlite, BankConfig::default())
        .await
        .unwrap();
    let served = t
        .client
        .get(format!("{}/openapi.json", t.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(served, bank_sandbox::api::OPENAPI);
    for (method, path) in documented() {
        let concrete = path
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let url = format!("{}{concrete}", t.url);
        let request = match method.as_str() {
            "get" => t.client.get(url),
            "post" => t.client.post(url).body("{}"),
            other => panic!("unexpected method {other}"),
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        assert_ne!(
            status,
            reqwest::StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        if status == reqwest::StatusCode::NOT_FOUND {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_ne!(body["error"], "no_route", "{method} {path} is not routed");
        }
    }
}
