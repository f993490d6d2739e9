//! The generated OpenAPI document matches the Svix contract for every implemented path:
//! operation ids, parameters, bodies, responses, and each schema's properties,
//! required fields and types (nullability spelled either the 3.0 or 3.1 way).

use std::collections::BTreeSet;

use serde_json::Value;

/// Responses where Herald follows the official SDKs rather than the contract snapshot:
/// `(operation, contract status, Herald's status)`. svix 2.9 parses the rotated secret
/// from the body, so Herald answers 200 with `EndpointSecretOut` instead of 204.
const SDK_DEVIATIONS: &[(&str, &str, &str)] =
    &[("post /api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate", "204", "200")];

fn contract() -> Value {
    serde_json::from_str(include_str!("../contract/svix-subset.json")).expect("contract subset parses")
}

fn ours() -> Value {
    serde_json::to_value(herald_api::openapi::document()).expect("document serialises")
}

/// A comparable shape of a schema: refs by name, nullability dropped, arrays and maps
/// by their item shape.
fn shape(schema: Option<&Value>) -> Value {
    let Some(schema) = schema else { return Value::Null };
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return Value::String(format!("ref:{}", r.rsplit('/').next().unwrap_or_default()));
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(list) = schema.get(key).and_then(Value::as_array) {
            let non_null: Vec<&Value> = list.iter().filter(|s| s.get("type") != Some(&Value::from("null"))).collect();
            if non_null.len() == 1 {
                return shape(Some(non_null[0]));
            }
        }
    }
    let kind = match schema.get("type") {
        Some(Value::Array(types)) => types.iter().find(|t| *t != "null").cloned().unwrap_or(Value::Null),
        Some(t) => t.clone(),
        None => Value::Null,
    };
    match kind.as_str() {
        Some("array") => serde_json::json!(["array", shape(schema.get("items"))]),
        Some("object") if schema.get("additionalProperties").is_some_and(Value::is_object) => {
            serde_json::json!(["map", shape(schema.get("additionalProperties"))])
        }
        _ => kind,
    }
}

fn names(list: Option<&Value>, key: &str) -> BTreeSet<String> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| if key.is_empty() { v.as_str() } else { v.get(key).and_then(Value::as_str) })
        .map(str::to_owned)
        .collect()
}

fn json_schema<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    v.pointer(pointer).and_then(|c| c.pointer("/content/application~1json/schema"))
}

#[test]
fn operations_match_the_contract() {
    let (contract, ours) = (contract(), ours());
    for (path, item) in contract["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let here = format!("{method} {path}");
            let mine = ours["paths"][path].get(method).unwrap_or_else(|| panic!("{here} is not implemented"));
            assert_eq!(mine["operationId"], op["operationId"], "{here}");
            let wanted = names(op.get("parameters"), "name");
            let have = names(mine.get("parameters"), "name");
            let missing: Vec<_> = wanted.difference(&have).collect();
            assert!(missing.is_empty(), "{here} lacks parameters {missing:?}");
            assert_eq!(shape(json_schema(mine, "/requestBody")), shape(json_schema(op, "/requestBody")), "{here} body");
            for (status, response) in op["responses"].as_object().unwrap() {
                if let Some((_, _, instead)) = SDK_DEVIATIONS.iter().find(|(o, s, _)| *o == here && s == status) {
                    assert!(
                        mine["responses"].get(*instead).is_some(),
                        "{here} documents its {instead} instead of {status}"
                    );
                    continue;
                }
                let mine_response = mine["responses"].get(status).unwrap_or_else(|| panic!("{here} lacks {status}"));
                assert_eq!(
                    shape(json_schema(mine_response, "")),
                    shape(json_schema(response, "")),
                    "{here} response {status}"
                );
            }
        }
    }
}

#[test]
fn schemas_match_the_contract() {
    let (contract, ours) = (contract(), ours());
    for (name, schema) in contract["components"]["schemas"].as_object().unwrap() {
        let mine = ours["components"]["schemas"].get(name).unwrap_or_else(|| panic!("schema {name} is missing"));
        let props = |s: &Value| s["properties"].as_object().map(|m| m.keys().cloned().collect::<BTreeSet<_>>());
        assert_eq!(props(mine), props(schema), "{name} properties");
        assert_eq!(names(mine.get("required"), ""), names(schema.get("required"), ""), "{name} required");
        for (prop, spec) in schema["properties"].as_object().into_iter().flatten() {
            assert_eq!(shape(mine["properties"].get(prop)), shape(Some(spec)), "{name}.{prop}");
        }
    }
}
