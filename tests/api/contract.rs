//! The contract and the code agree: `openapi.yaml` at the repository root lists exactly the
//! router's routes, is served byte for byte at `GET /openapi.yaml`, documents every status the
//! server answers, and every answer of the in-process router (errors included) validates against
//! the schema and headers the spec documents for it. A route, a status, a field or an error code
//! added to the code without the spec (or the other way round) fails here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use axum::body::Body;
use axum::http::{Method, Request, header};
use prefeval::api::{ErrorCode, ErrorStatus};
use serde_json::{Value, json};

use crate::helpers::{Answer, Raw, TestApp, hold_worker};

const SPEC_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
const SERVER_RS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/server/routes.rs");
const ERROR_RS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/core/src/error.rs");

/// Every route of `src/server/routes.rs` (`app` and `metrics_app`), as (method, path). Checked against
/// the source itself and against the spec below.
const ROUTES: [(&str, &str); 14] = [
    ("POST", "/v1/evaluate"),
    ("POST", "/v1/evaluate/stream"),
    ("POST", "/v1/compare"),
    ("POST", "/v1/compare/stream"),
    ("POST", "/v1/report"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.yaml"),
    ("GET", "/docs"),
    ("GET", "/docs/init.js"),
    ("GET", "/docs/swagger-ui-bundle.js"),
    ("GET", "/docs/swagger-ui.css"),
    ("GET", "/ui"),
];

/// Every variant of `ErrorCode`; checked against the enum's source, so a new code fails here.
const ERROR_CODES: [ErrorCode; 30] = ErrorCode::ALL;

/// Headers whose presence in an answer must be documented for that answer.
const TRACKED_HEADERS: [&str; 7] =
    ["x-request-id", "x-queue-time-ms", "x-compute-time-ms", "allow", "retry-after", "www-authenticate", "connection"];

const HTTP_METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

const VALID: &str = r#"{"lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]}"#;

/// `VALID`'s list as one line of NDJSON, for the stream.
const VALID_LINE: &str = "{\"items\": [{\"reward\": 1.0}, {\"reward\": 0.0}]}\n";

/// `VALID`'s list scored by two models, for `/v1/compare`.
const VALID_COMPARE_LINE: &str = "{\"items\": [{\"rewards\": [1.0, 0.0]}, {\"rewards\": [0.0, 1.0]}]}\n";
const VALID_COMPARE: &str =
    r#"{"models": ["a", "b"], "lists": [{"items": [{"rewards": [1.0, 0.2]}, {"rewards": [0.0, 0.5]}]}]}"#;

// ----- the spec as data and its schemas as validators ------------------------------------------

struct Spec {
    text: String,
    doc: Value,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let text = std::fs::read_to_string(SPEC_FILE).unwrap_or_else(|e| panic!("cannot read {SPEC_FILE}: {e}"));
        let doc: Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("openapi.yaml is not YAML: {e}"));
        Spec { text, doc, validators: Mutex::default() }
    })
}

/// A key written twice in one mapping is read as the last one, silently: two schemas of one name
/// would make every reference to the first mean the second.
#[test]
fn no_mapping_of_the_spec_has_a_key_twice() {
    let text = &spec().text;
    if let Err(error) = serde_norway::from_str::<serde_norway::Value>(text) {
        panic!("openapi.yaml: {error}");
    }
}

/// One segment of a JSON pointer (`~` and `/` escaped).
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// A JSON pointer from its segments.
fn pointer(segments: &[&str]) -> String {
    segments.iter().map(|segment| format!("/{}", escape(segment))).collect()
}

/// A JSON pointer as a URI fragment (percent-encoded where a fragment needs it).
fn fragment(pointer: &str) -> String {
    let mut out = String::from("#");
    for byte in pointer.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl Spec {
    fn at(&self, pointer: &str) -> &Value {
        self.doc.pointer(pointer).unwrap_or_else(|| panic!("openapi.yaml has nothing at {pointer}"))
    }

    /// Follows `$ref`s from `pointer` to the object they name: its pointer and value.
    fn resolve(&self, pointer: String) -> (String, &Value) {
        let mut pointer = pointer;
        for _ in 0..16 {
            let value = self.at(&pointer);
            match value.get("$ref").and_then(Value::as_str) {
                Some(target) => {
                    pointer = target
                        .strip_prefix('#')
                        .unwrap_or_else(|| panic!("only local $refs are expected, found {target}"))
                        .to_string();
                }
                None => return (pointer, value),
            }
        }
        panic!("$ref loop at {pointer}")
    }

    /// A validator for the schema at `pointer`: the whole document as the root, with a top-level
    /// `$ref` to the schema, so that the schema's own `$ref`s resolve in the document.
    fn validator(&self, pointer: &str) -> Arc<jsonschema::Validator> {
        let mut cache = self.validators.lock().unwrap_or_else(PoisonError::into_inner);
        let validator = cache.entry(pointer.to_string()).or_insert_with(|| {
            let mut root = self.doc.clone();
            root["$ref"] = Value::String(fragment(pointer));
            let validator = jsonschema::draft202012::new(&root)
                .unwrap_or_else(|e| panic!("the schema at {pointer} does not compile: {e}"));
            Arc::new(validator)
        });
        Arc::clone(validator)
    }

    fn errors(&self, pointer: &str, instance: &Value) -> Vec<String> {
        let validator = self.validator(pointer);
        validator.iter_errors(instance).map(|e| format!("{e} (at `{}`)", e.instance_path())).collect()
    }

    #[track_caller]
    fn assert_valid(&self, pointer: &str, instance: &Value, what: &str) {
        let errors = self.errors(pointer, instance);
        assert!(
            errors.is_empty(),
            "{what} does not validate against {pointer}:\n  {}\n{}",
            errors.iter().map(|e| excerpt(e.as_bytes())).collect::<Vec<_>>().join("\n  "),
            excerpt(instance.to_string().as_bytes())
        );
    }

    /// Pointer of the response documented for `status` of `method path`, if any.
    fn documented(&self, method: &Method, path: &str, status: u16) -> Option<String> {
        let method = method.as_str().to_ascii_lowercase();
        let status = status.to_string();
        let operation = self.doc["paths"].get(path)?.get(&method)?;
        operation["responses"].get(&status)?;
        Some(pointer(&["paths", path, &method, "responses", &status]))
    }

    /// The (METHOD, path) pairs the spec documents.
    fn operations(&self) -> BTreeSet<(String, String)> {
        let paths = self.doc["paths"].as_object().expect("paths is a mapping");
        let mut operations = BTreeSet::new();
        for (path, item) in paths {
            for method in HTTP_METHODS {
                if item.get(method).is_some() {
                    operations.insert((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        operations
    }

    /// Checks an answer of `method path`: its status is documented for that operation, and it
    /// matches that response (see `check_response`).
    #[track_caller]
    fn check(&self, method: &Method, path: &str, answer: &Answer) {
        let status = answer.status.as_u16();
        let documented = self.documented(method, path, status).unwrap_or_else(|| {
            panic!(
                "{method} {path} answered {status}, which openapi.yaml does not document for it; body: {}",
                excerpt(&answer.body)
            )
        });
        self.check_response(&format!("{status} of {method} {path}"), documented, answer);
    }

    /// Checks an answer against the response object at `pointer`: a documented media type, a
    /// body that validates against its schema, every required header present, every header
    /// value valid, and no tracked header present that the response does not document.
    #[track_caller]
    fn check_response(&self, what: &str, pointer: String, answer: &Answer) {
        let (pointer, response) = self.resolve(pointer);

        let content_type = answer.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let content = response["content"].as_object().unwrap_or_else(|| panic!("{what}: {pointer} has no content"));
        let media = content.keys().find(|key| media_type_matches(key, content_type)).unwrap_or_else(|| {
            panic!(
                "{what}: Content-Type {content_type:?} is not documented at {pointer} (documented: {:?})",
                content.keys()
            )
        });
        let essence = media_essence(media);
        let body: Value = if essence == "application/json" || essence.ends_with("+json") {
            serde_json::from_slice(&answer.body)
                .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {}", excerpt(&answer.body)))
        } else if essence.ends_with("yaml") {
            serde_norway::from_slice(&answer.body).unwrap_or_else(|e| panic!("{what}: body is not YAML ({e})"))
        } else {
            Value::String(String::from_utf8_lossy(&answer.body).into_owned())
        };
        self.assert_valid(&format!("{pointer}/content/{}/schema", escape(media)), &body, what);

        let documented = response.get("headers").and_then(Value::as_object).cloned().unwrap_or_default();
        let documented_names: BTreeSet<String> = documented.keys().map(|name| name.to_ascii_lowercase()).collect();
        for (name, _) in &documented {
            let (header_pointer, header) = self.resolve(format!("{pointer}/headers/{}", escape(name)));
            let value = answer.headers.get(name.as_str()).map(|v| v.to_str().expect("header is text").to_string());
            let Some(value) = value else {
                assert!(header["required"] != json!(true), "{what}: required header {name} is missing");
                continue;
            };
            let schema = &header["schema"];
            let instance = if schema["type"] == "integer" || schema["type"] == "number" {
                serde_json::from_str(&value)
                    .unwrap_or_else(|_| panic!("{what}: header {name}: {value:?} is not a number"))
            } else {
                Value::String(value)
            };
            self.assert_valid(&format!("{header_pointer}/schema"), &instance, &format!("{what}: header {name}"));
        }
        for name in TRACKED_HEADERS {
            if answer.headers.contains_key(name) {
                assert!(
                    documented_names.contains(name),
                    "{what}: the answer carries `{name}`, undocumented at {pointer}"
                );
            }
        }
    }
}

/// The start of a body, for failure messages (the Swagger UI bundle is 1.7 MB).
fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 600;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]).into_owned();
    if body.len() > MAX { format!("{text}… ({} bytes)", body.len()) } else { text }
}

fn media_essence(media_type: &str) -> String {
    media_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// Parameters of a media type, lower-cased, without spaces.
fn media_parameters(media_type: &str) -> BTreeSet<String> {
    media_type.split(';').skip(1).map(|p| p.replace(' ', "").to_ascii_lowercase()).filter(|p| !p.is_empty()).collect()
}

/// The documented media type `key` covers the answer's `content_type`: the same type and subtype,
/// and every parameter the key names (`version=0.0.4`) is in the answer.
fn media_type_matches(key: &str, content_type: &str) -> bool {
    media_essence(key) == media_essence(content_type)
        && media_parameters(key).is_subset(&media_parameters(content_type))
}

// ----- requests --------------------------------------------------------------------------------

fn request(method: Method, uri: &str) -> Request<Body> {
    Request::builder().method(method).uri(uri).body(Body::empty()).expect("request builds")
}

fn evaluate_request(body: impl Into<Body>, content_type: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(Method::POST).uri("/v1/evaluate");
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder.body(body.into()).expect("request builds")
}

/// A valid request to the POST route `path`: a batch as JSON, one list as NDJSON for the stream,
/// or a comparison of two models.
fn valid_post(path: &str) -> Request<Body> {
    let (content_type, body) = match path {
        "/v1/evaluate/stream" | "/v1/report" => ("application/x-ndjson", VALID_LINE),
        "/v1/compare" => ("application/json", VALID_COMPARE),
        "/v1/compare/stream" => ("application/x-ndjson", VALID_COMPARE_LINE),
        _ => ("application/json", VALID),
    };
    let uri = if path == "/v1/compare/stream" { format!("{path}?models=a,b") } else { path.to_string() };
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .expect("request builds")
}

/// POSTs `body` to `/v1/evaluate` as JSON and checks the answer against the spec.
async fn evaluate(app: &TestApp, body: impl Into<Body>) -> Answer {
    let answer = app.send(evaluate_request(body, Some("application/json"))).await;
    spec().check(&Method::POST, "/v1/evaluate", &answer);
    answer
}

const COMPARE: &str = "/v1/compare";

/// POSTs `body` to `/v1/compare` as JSON and checks the answer against the spec.
async fn compare(app: &TestApp, body: impl Into<Body>) -> Answer {
    let request = Request::builder()
        .method(Method::POST)
        .uri(COMPARE)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .expect("request builds");
    let answer = app.send(request).await;
    spec().check(&Method::POST, COMPARE, &answer);
    answer
}

#[track_caller]
fn assert_status(answer: &Answer, status: u16, code: Option<&str>) {
    let text = excerpt(&answer.body);
    assert_eq!(answer.status.as_u16(), status, "body: {text}");
    if let Some(code) = code {
        assert_eq!(answer.error_code(), code, "body: {text}");
    }
}

// ----- the spec itself -------------------------------------------------------------------------

fn collect_refs<'a>(value: &'a Value, refs: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                refs.push(target);
            }
            map.values().for_each(|v| collect_refs(v, refs));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

#[test]
fn the_spec_is_openapi_3_1_every_ref_resolves_and_every_schema_compiles() {
    let spec = spec();
    assert_eq!(spec.doc["openapi"], "3.1.0");
    assert!(!spec.text.trim_start().starts_with('{'), "openapi.yaml must be YAML, not JSON");
    let mut refs = Vec::new();
    collect_refs(&spec.doc, &mut refs);
    assert!(!refs.is_empty());
    for target in refs {
        let pointer = target.strip_prefix('#').unwrap_or_else(|| panic!("non-local $ref {target}"));
        assert!(spec.doc.pointer(pointer).is_some(), "$ref {target} resolves to nothing");
    }
    for name in spec.doc["components"]["schemas"].as_object().expect("components.schemas").keys() {
        spec.validator(&pointer(&["components", "schemas", name]));
    }
    // Every response of every operation has a content schema.
    for (method, path) in spec.operations() {
        let method = method.to_ascii_lowercase();
        let responses = spec.at(&pointer(&["paths", &path, &method, "responses"])).as_object().expect("responses");
        assert!(!responses.is_empty(), "{method} {path} documents no response");
        for status in responses.keys() {
            assert!(status.len() == 3 && status.parse::<u16>().is_ok(), "{method} {path}: status {status:?}");
            let (at, response) = spec.resolve(pointer(&["paths", &path, &method, "responses", status]));
            let content = response["content"].as_object().unwrap_or_else(|| panic!("{at} has no content"));
            for (media, object) in content {
                assert!(object.get("schema").is_some(), "{at}: {media} has no schema");
            }
        }
    }
}

/// Every example in the spec (media types, parameters, headers, schemas) validates against the
/// schema it illustrates.
#[test]
fn every_example_in_the_spec_validates_against_its_schema() {
    let spec = spec();
    let mut checked = 0;
    let mut visit = |at: &str, object: &Value, schema_pointer: &str| {
        if let Some(example) = object.get("example") {
            spec.assert_valid(schema_pointer, example, &format!("the example at {at}"));
            checked += 1;
        }
        if let Some(examples) = object.get("examples").and_then(Value::as_object) {
            for name in examples.keys() {
                let (_, example) = spec.resolve(format!("{at}/examples/{}", escape(name)));
                spec.assert_valid(schema_pointer, &example["value"], &format!("example {name} at {at}"));
                checked += 1;
            }
        }
    };
    // Media types of request bodies and responses, inline or in components.
    let mut media_objects = Vec::new();
    for (method, path) in spec.operations() {
        let method = method.to_ascii_lowercase();
        let operation = pointer(&["paths", &path, &method]);
        if spec.at(&operation).get("requestBody").is_some() {
            media_objects.push(format!("{operation}/requestBody"));
        }
        for status in spec.at(&format!("{operation}/responses")).as_object().expect("responses").keys() {
            media_objects.push(format!("{operation}/responses/{status}"));
        }
    }
    for name in spec.doc["components"]["responses"].as_object().expect("components.responses").keys() {
        media_objects.push(pointer(&["components", "responses", name]));
    }
    for at in media_objects {
        if spec.at(&at).get("$ref").is_some() {
            continue; // checked where it is defined
        }
        for media in spec.at(&at)["content"].as_object().expect("content").keys() {
            let media_pointer = format!("{at}/content/{}", escape(media));
            visit(&media_pointer, spec.at(&media_pointer), &format!("{media_pointer}/schema"));
        }
    }
    for kind in ["parameters", "headers"] {
        for name in spec.doc["components"][kind].as_object().expect("components").keys() {
            let at = pointer(&["components", kind, name]);
            visit(&at, spec.at(&at), &format!("{at}/schema"));
        }
    }
    // `examples` of a schema is a list of instances of that schema.
    for name in spec.doc["components"]["schemas"].as_object().expect("components.schemas").keys() {
        let at = pointer(&["components", "schemas", name]);
        for example in spec.at(&at).get("examples").and_then(Value::as_array).into_iter().flatten() {
            spec.assert_valid(&at, example, &format!("an example of {at}"));
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} examples found");
}

/// The statuses each operation documents are the ones the server can answer (`docs/design/api.md`).
#[test]
fn each_operation_documents_its_statuses() {
    let spec = spec();
    let statuses = |method: &str, path: &str| -> BTreeSet<String> {
        spec.at(&pointer(&["paths", path, method, "responses"]))
            .as_object()
            .expect("responses")
            .keys()
            .cloned()
            .collect()
    };
    let evaluate: BTreeSet<String> =
        ["200", "400", "401", "405", "408", "413", "414", "415", "422", "431", "500", "503"].map(String::from).into();
    assert_eq!(statuses("post", "/v1/evaluate"), evaluate);
    assert_eq!(statuses("post", "/v1/compare"), evaluate, "/v1/compare answers as /v1/evaluate does");
    let stream = statuses("post", "/v1/evaluate/stream");
    assert_eq!(statuses("post", "/v1/compare/stream"), stream, "the compare stream answers as the evaluate stream");
    for (method, path) in ROUTES.iter().filter(|(method, _)| *method == "GET") {
        let documented = statuses(&method.to_ascii_lowercase(), path);
        // 400, 414 and 431: a request head the HTTP layer cannot read, answered on every path.
        for status in ["200", "400", "405", "414", "431", "500"] {
            assert!(documented.contains(status), "GET {path} does not document {status}");
        }
    }
    assert!(statuses("get", "/readyz").contains("503"));
    assert!(statuses("get", "/metrics").contains("404"), "GET /metrics is 404 when metrics have their own listener");
    // The 503 of a full queue carries Retry-After; a 405 carries Allow; a 401 WWW-Authenticate.
    let (_, queue_full) = spec.resolve(pointer(&["paths", "/v1/evaluate", "post", "responses", "503"]));
    assert!(queue_full["headers"].get("Retry-After").is_some());
    let (_, unauthorized) = spec.resolve(pointer(&["paths", "/v1/evaluate", "post", "responses", "401"]));
    assert!(unauthorized["headers"].get("WWW-Authenticate").is_some());
    for (method, path) in ROUTES {
        let method = method.to_ascii_lowercase();
        let (_, not_allowed) = spec.resolve(pointer(&["paths", path, &method, "responses", "405"]));
        assert!(not_allowed["headers"].get("Allow").is_some(), "the 405 of {path} does not document Allow");
    }
    for path in ["/v1/evaluate", "/v1/compare"] {
        let (_, ok) = spec.resolve(pointer(&["paths", path, "post", "responses", "200"]));
        for name in ["x-request-id", "x-queue-time-ms", "x-compute-time-ms"] {
            assert!(ok["headers"].get(name).is_some(), "the 200 of {path} does not document {name}");
        }
        let (_, queue_full) = spec.resolve(pointer(&["paths", path, "post", "responses", "503"]));
        assert!(queue_full["headers"].get("Retry-After").is_some(), "the 503 of {path} does not document Retry-After");
    }
}

// ----- routes: the spec, the router and its source ---------------------------------------------

/// The end of the balanced parenthesised group that `text` starts with (`(`…`)`).
fn skip_group(text: &str) -> &str {
    let mut depth = 0usize;
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[at + 1..];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses in src/server/routes.rs near {:?}", &text[..text.len().min(80)])
}

/// The `.route("PATH", get(..).post(..))` calls of `source`, as (METHOD, PATH).
fn routes_in_source(source: &str) -> BTreeSet<(String, String)> {
    let code: String = source.lines().map(|line| line.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    // `.merge(` needs nothing: the merged routers' `.route(` calls are in this file too.
    for unsupported in [".nest(", ".nest_service(", ".route_service("] {
        assert!(
            !code.contains(unsupported),
            "src/server/routes.rs uses `{unsupported}`: teach routes_in_source to read it"
        );
    }
    let mut routes = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let literal = rest.trim_start().strip_prefix('"').expect("a route's path is a string literal");
        let end = literal.find('"').expect("closing quote");
        let path = &literal[..end];
        let mut method_router = literal[end + 1..].trim_start().strip_prefix(',').expect("`,` after the path");
        loop {
            method_router = method_router.trim_start();
            let name_end = method_router
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .expect("a method router");
            let name = method_router[..name_end].rsplit("::").next().unwrap_or_default();
            let method = name.strip_suffix("_service").unwrap_or(name);
            assert!(HTTP_METHODS.contains(&method), "route {path}: unexpected method router `{name}`");
            routes.insert((method.to_ascii_uppercase(), path.to_string()));
            method_router = skip_group(&method_router[name_end..]).trim_start();
            match method_router.strip_prefix('.') {
                Some(chained) => method_router = chained,
                None => break,
            }
        }
    }
    routes
}

#[test]
fn routes_in_source_reads_chained_merged_and_conditional_routes() {
    let source = r#"
        let v1 = Router::new().route("/v1/a", post(a)).route_layer(layer);
        // .route("/commented-out", get(c))
        let r = Router::new()
            .merge(v1)
            .route("/b", get(b).post(handler(1)))
            .route("/c", axum::routing::delete(d));
        if on { router = router.route("/m", get(metrics)); }
    "#;
    let expected: BTreeSet<(String, String)> =
        [("POST", "/v1/a"), ("GET", "/b"), ("POST", "/b"), ("DELETE", "/c"), ("GET", "/m")]
            .iter()
            .map(|(method, path)| (method.to_string(), path.to_string()))
            .collect();
    assert_eq!(routes_in_source(source), expected);
}

fn listed_routes() -> BTreeSet<(String, String)> {
    ROUTES.iter().map(|(method, path)| (method.to_string(), path.to_string())).collect()
}

#[test]
fn the_routes_of_src_server_routes_rs_are_the_listed_ones() {
    let source = std::fs::read_to_string(SERVER_RS).unwrap_or_else(|e| panic!("cannot read {SERVER_RS}: {e}"));
    let in_source = routes_in_source(&source);
    assert_eq!(
        in_source,
        listed_routes(),
        "the routes of src/server/routes.rs differ from ROUTES in tests/api/contract.rs: add the route to ROUTES and to openapi.yaml"
    );
}

#[test]
fn the_spec_documents_exactly_the_routes() {
    assert_eq!(
        spec().operations(),
        listed_routes(),
        "openapi.yaml's paths and methods differ from the router's routes"
    );
}

#[tokio::test]
async fn every_route_answers_in_process_as_documented() {
    let app = TestApp::spawn().await;
    for (method, path) in ROUTES {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let answer = if method == Method::POST {
            app.send(valid_post(path)).await
        } else {
            app.send(request(method.clone(), path)).await
        };
        assert!(
            ![404, 405].contains(&answer.status.as_u16()),
            "{method} {path} answered {}: the router does not serve it",
            answer.status
        );
        spec().check(&method, path, &answer);
    }
}

#[tokio::test]
async fn every_operation_of_the_spec_is_served() {
    let app = TestApp::spawn().await;
    for (method, path) in spec().operations() {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let request = if method == Method::POST {
            valid_post(&path)
        } else {
            Request::builder().method(method.clone()).uri(&path).body(Body::empty()).expect("request builds")
        };
        let answer = app.send(request).await;
        assert_ne!(answer.status, 404, "{method} {path} is in openapi.yaml but the router does not route it");
        assert_ne!(answer.status, 405, "{method} {path} is in openapi.yaml but the route does not serve {method}");
    }
}

#[tokio::test]
async fn a_method_a_route_does_not_serve_answers_a_documented_405() {
    let app = TestApp::spawn().await;
    let query = Method::from_bytes(b"QUERY").expect("QUERY is a valid method token");
    for (served, path) in ROUTES {
        let other = if served == "POST" { Method::GET } else { Method::POST };
        // OPTIONS too: without PREFEVAL_CORS_ORIGINS nothing answers it as a CORS preflight.
        for method in [other, Method::DELETE, Method::PUT, Method::PATCH, Method::OPTIONS, query.clone()] {
            let answer = app.send(request(method.clone(), path)).await;
            assert_status(&answer, 405, Some("method_not_allowed"));
            let allow = answer.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or_default();
            assert!(allow.split(',').any(|m| m.trim() == served), "{method} {path}: Allow {allow:?} lacks {served}");
            // The spec documents the 405 on the operation the path serves.
            spec().check(&Method::from_bytes(served.as_bytes()).expect("method"), path, &answer);
        }
    }
}

/// A request head hyper refuses is answered on every path, before routing, with the documented
/// JSON error (`src/server/parse_errors.rs`).
#[tokio::test]
async fn request_heads_hyper_refuses_answer_documented_errors() {
    let app = TestApp::spawn().await;
    let many_headers: String = (0..101).map(|i| format!("x-h{i}: v\r\n")).collect();
    for (method, path) in ROUTES {
        let head = |target: &str, extra: &str| format!("{method} {target} HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        let cases = [
            (head(path, "Content-Length: 2\r\nContent-Length: 3\r\n"), 400, "bad_request"),
            (head(&format!("{path}?{}", "q".repeat(65_535)), ""), 414, "uri_too_long"),
            (head(path, &many_headers), 431, "headers_too_large"),
        ];
        for (request, status, code) in cases {
            let addr = app.addr;
            let answer = tokio::task::spawn_blocking(move || Raw::send_bytes(addr, request.as_bytes()))
                .await
                .expect("the client thread");
            assert_status(&answer, status, Some(code));
            spec().check(&Method::from_bytes(method.as_bytes()).expect("method"), path, &answer);
        }
    }
}

#[tokio::test]
async fn an_unknown_path_answers_the_documented_404() {
    let app = TestApp::spawn().await;
    let unknown = [
        (Method::GET, "/v1/nothing-here"),
        (Method::POST, "/v2/evaluate"),
        (Method::GET, "/docs/"),
        (Method::OPTIONS, "/nowhere"),
    ];
    for (method, uri) in unknown {
        let answer = app.send(request(method, uri)).await;
        assert_status(&answer, 404, Some("not_found"));
        spec().check_response(&format!("404 of {uri}"), pointer(&["components", "responses", "NotFound"]), &answer);
    }
}

#[tokio::test]
async fn openapi_yaml_is_served_byte_for_byte() {
    let answer = TestApp::spawn().await.send(request(Method::GET, "/openapi.yaml")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers[header::CONTENT_TYPE], "application/yaml");
    assert!(answer.body == spec().text.as_bytes(), "GET /openapi.yaml differs from the repository's openapi.yaml");
    spec().check(&Method::GET, "/openapi.yaml", &answer);
}

// ----- /v1/evaluate ----------------------------------------------------------------------------

/// The named request examples of the spec, sent to the server, answer exactly the response
/// examples of the same name, on `/v1/evaluate` and on `/v1/compare`.
#[tokio::test]
async fn request_examples_answer_their_documented_response_examples() {
    let spec = spec();
    let app = TestApp::spawn().await;
    for path in ["/v1/evaluate", COMPARE] {
        let operation = pointer(&["paths", path, "post"]);
        let requests = spec.at(&format!("{operation}/requestBody/content/application~1json/examples"));
        let responses = spec.at(&format!("{operation}/responses/200/content/application~1json/examples"));
        let requests = requests.as_object().expect("request examples");
        assert!(requests.len() >= 3, "expected several request examples for {path}");
        assert_eq!(
            requests.keys().collect::<BTreeSet<_>>(),
            responses.as_object().expect("response examples").keys().collect::<BTreeSet<_>>(),
            "{path}: every request example has its answer, and every answer its request"
        );
        for (name, example) in requests {
            let body = serde_json::to_vec(&example["value"]).expect("serializes");
            let request = Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .expect("request builds");
            let answer = app.send(request).await;
            spec.check(&Method::POST, path, &answer);
            assert_status(&answer, 200, None);
            let expected = &responses[name]["value"];
            assert_eq!(
                &answer.json(),
                expected,
                "{path} example {name}: the server's answer differs from the documented one"
            );
        }
    }
    let requests = spec.at("/paths/~1v1~1evaluate/post/requestBody/content/application~1json/examples");
    let responses = spec.at("/paths/~1v1~1evaluate/post/responses/200/content/application~1json/examples");
    // The worked example of docs/design/api.md, as a request example.
    let worked = &requests["worked"]["value"];
    assert_eq!(worked["lists"][0]["id"], "prompt-0001");
    let summary = &responses["worked"]["value"]["summary"];
    assert_eq!((&summary["lists"], &summary["pairs"], &summary["accuracy"]), (&json!(2), &json!(8), &json!(0.875)));
}

/// `lists` of a request in `format`, rewritten natively: every list as `items` with explicit
/// 1-based ranks, in the order the format reads its items (`docs/design/api.md`, "Input formats").
/// Written from the contract, independently of the server's conversion: ratings become
/// competition ranks (1 + the number of better ratings), where the server counts distinct ratings;
/// both imply the same preferences.
fn native_lists(format: &str, lists: &Value) -> Value {
    let native_list = |list: &Value| -> Value {
        let items: Vec<Value> = match format {
            "native" | "ranks_zero_based" => {
                let items = list["items"].as_array().expect("items");
                let ranked = items.iter().all(|item| item.get("rank").is_some());
                let shift = u64::from(format == "ranks_zero_based");
                items
                    .iter()
                    .enumerate()
                    .map(|(position, item)| {
                        let rank = if ranked {
                            item["rank"].as_u64().expect("an integer rank") + shift
                        } else {
                            position as u64 + 1
                        };
                        let mut item = item.clone();
                        item["rank"] = json!(rank);
                        item
                    })
                    .collect()
            }
            "pairs" => vec![
                json!({"id": "chosen", "reward": list["chosen_reward"], "rank": 1}),
                json!({"id": "rejected", "reward": list["rejected_reward"], "rank": 2}),
            ],
            "ranking" => {
                let mut items = Vec::new();
                for (position, entry) in list["ranking"].as_array().expect("ranking").iter().enumerate() {
                    let tied = match entry.as_array() {
                        Some(tied) => tied.clone(),
                        None => vec![entry.clone()],
                    };
                    for id in tied {
                        let reward = list["rewards"][id.as_str().expect("an id")].clone();
                        items.push(json!({"id": id, "reward": reward, "rank": position + 1}));
                    }
                }
                items
            }
            "ratings" => {
                let items = list["items"].as_array().expect("items");
                let rating = |item: &Value| item["rating"].as_f64().expect("a rating");
                items
                    .iter()
                    .map(|item| {
                        let better = items.iter().filter(|other| rating(other) > rating(item)).count();
                        let mut native = json!({"reward": item["reward"], "rank": better + 1});
                        if let Some(id) = item.get("id") {
                            native["id"] = id.clone();
                        }
                        native
                    })
                    .collect()
            }
            other => panic!("no native form for format {other}"),
        };
        let mut native = json!({"items": items});
        for key in ["id", "group"] {
            if let Some(value) = list.get(key) {
                native[key] = value.clone();
            }
        }
        native
    };
    Value::Array(lists.as_array().expect("lists").iter().map(native_list).collect())
}

/// Each request example of the spec (one per input format at least) answers exactly what the same
/// lists answer sent natively with explicit ranks: the format changes how lists are read, never
/// the figures.
#[tokio::test]
async fn each_format_example_answers_the_same_as_its_lists_sent_natively() {
    let spec = spec();
    let requests = spec.at("/paths/~1v1~1evaluate/post/requestBody/content/application~1json/examples");
    let formats: BTreeSet<&str> = spec
        .at("/components/schemas/Format/enum")
        .as_array()
        .expect("Format.enum")
        .iter()
        .map(|format| format.as_str().expect("a format is a string"))
        .collect();
    let mut exemplified = BTreeSet::new();
    let app = TestApp::spawn().await;
    for (name, example) in requests.as_object().expect("request examples") {
        let body = &example["value"];
        let format = body["options"]["format"].as_str().unwrap_or("native");
        exemplified.insert(format);
        let mut native = body.clone();
        native["lists"] = native_lists(format, &body["lists"]);
        if let Some(options) = native.get_mut("options").and_then(Value::as_object_mut) {
            options.remove("format");
        }
        let answer = evaluate(&app, serde_json::to_vec(body).expect("serializes")).await;
        assert_status(&answer, 200, None);
        let natively = evaluate(&app, serde_json::to_vec(&native).expect("serializes")).await;
        assert_status(&natively, 200, None);
        let (answer, natively) = (answer.json(), natively.json());
        assert_eq!(answer["loss"], natively["loss"], "example {name}: loss differs from {native}");
        assert_eq!(answer["summary"]["accuracy"], natively["summary"]["accuracy"], "example {name}: accuracy");
        for (list, native_list) in
            answer["lists"].as_array().expect("lists").iter().zip(natively["lists"].as_array().expect("lists"))
        {
            assert_eq!(list["loss"], native_list["loss"], "example {name}: a list's loss differs");
            assert_eq!(list["accuracy"], native_list["accuracy"], "example {name}: a list's accuracy differs");
        }
        // The whole answer, pairs, ids, chance loss and totals included; the run names the format.
        let mut answer = answer;
        assert_eq!(answer["summary"]["run"]["format"], format, "example {name}: the run's format");
        answer["summary"]["run"]["format"] = json!("native");
        assert_eq!(answer, natively, "example {name} in format {format} answers differently from {native}");
    }
    let named: BTreeSet<&str> = formats.iter().copied().collect();
    assert_eq!(exemplified, named, "every format of options.format needs a request example");
}

/// `summary.totals` has `loss_sum` or, when the sum overflows f64, `loss_sum_scaled`; and
/// `loss_sum_squares` is absent when it overflows: the documented shapes, validated.
#[tokio::test]
async fn totals_keep_their_documented_shape_when_sums_overflow() {
    let app = TestApp::spawn().await;
    let list = |reward: f64| json!({"items": [{"reward": reward}, {"reward": 0.0}]});
    let options = json!({"normalization": "sum", "include_pairs": false});
    let cases = [
        (json!({"options": options.clone(), "lists": [list(-1.0)]}), true, true),
        (json!({"options": options.clone(), "lists": [list(-1e160)]}), true, false),
        (json!({"options": options, "lists": [list(-1e308), list(-1e308)]}), false, false),
    ];
    for (body, has_loss_sum, has_squares) in cases {
        let answer = evaluate(&app, serde_json::to_vec(&body).expect("serializes")).await;
        assert_status(&answer, 200, None);
        let json = answer.json();
        let totals = &json["summary"]["totals"];
        assert_eq!(totals.get("loss_sum").is_some(), has_loss_sum, "{body}: {totals}");
        assert_eq!(totals.get("loss_sum_scaled").is_some(), !has_loss_sum, "{body}: {totals}");
        assert_eq!(totals.get("loss_sum_squares").is_some(), has_squares, "{body}: {totals}");
        let lists = totals["lists"].as_f64().expect("lists");
        // The batch loss is the mean of the list losses, from the totals alone.
        let loss = match totals.get("loss_sum") {
            Some(sum) => sum.as_f64().expect("a number") / lists,
            None => totals["loss_sum_scaled"].as_f64().expect("a number") / lists * 2f64.powi(64),
        };
        assert_eq!(json["loss"].as_f64(), Some(loss), "{body}");
        let number = |value: &Value| value.as_f64().expect("a number");
        assert_eq!(number(&json["summary"]["accuracy"]), number(&totals["agreeing"]) / number(&totals["pairs"]));
        assert_eq!(number(&json["summary"]["chance_loss"]), number(&totals["chance_loss_sum"]) / lists);
    }
}

/// The answers' schemas state which optional figures are present when, not merely that they may
/// be: each documented answer, with one such figure added or removed, no longer validates.
#[test]
fn the_answer_schemas_state_when_each_optional_figure_is_present() {
    let spec = spec();
    let example = |path: &str, name: &str| -> Value {
        let operation =
            pointer(&["paths", path, "post", "responses", "200", "content", "application/json", "examples"]);
        spec.at(&format!("{operation}/{name}/value")).clone()
    };
    let evaluate_schema = "/components/schemas/EvaluateResponse";
    let compare_schema = "/components/schemas/CompareResponse";
    type Edit = fn(&mut Value);
    let cases: Vec<(&str, &str, &str, Edit)> = vec![
        // Two lists or more: standard errors and intervals; one list: none.
        ("/v1/evaluate", "worked", evaluate_schema, |v| {
            v["summary"].as_object_mut().unwrap().remove("loss_se");
        }),
        ("/v1/evaluate", "worked", evaluate_schema, |v| {
            v["summary"].as_object_mut().unwrap().remove("accuracy_ci");
        }),
        ("/v1/evaluate", "minimal", evaluate_schema, |v| v["summary"]["loss_se"] = json!(0.1)),
        ("/v1/evaluate", "minimal", evaluate_schema, |v| v["summary"]["accuracy_ci"] = json!([0.5, 1.0])),
        // τ-b in the summary exactly when defined for a list.
        ("/v1/evaluate", "minimal", evaluate_schema, |v| {
            v["summary"].as_object_mut().unwrap().remove("kendall_tau");
        }),
        ("/v1/evaluate", "minimal", evaluate_schema, |v| v["summary"]["totals"]["kendall_tau_lists"] = json!(0)),
        // Groups and the macro accuracy go together.
        ("/v1/evaluate", "deeper_figures", evaluate_schema, |v| {
            v["summary"].as_object_mut().unwrap().remove("macro_accuracy");
        }),
        ("/v1/evaluate", "minimal", evaluate_schema, |v| v["summary"]["macro_accuracy"] = json!(1.0)),
        // An empty calibration bin has no means; a filled one has both.
        ("/v1/evaluate", "deeper_figures", evaluate_schema, |v| v["calibration"]["bins"][0]["count"] = json!(0)),
        ("/v1/evaluate", "deeper_figures", evaluate_schema, |v| {
            v["calibration"]["bins"][0].as_object_mut().unwrap().remove("observed");
        }),
        // Length bias and its counts go together; a ratio is there exactly when it has pairs.
        ("/v1/evaluate", "length_bias", evaluate_schema, |v| {
            v["summary"].as_object_mut().unwrap().remove("length");
        }),
        ("/v1/evaluate", "length_bias", evaluate_schema, |v| {
            v["summary"]["totals"].as_object_mut().unwrap().remove("length");
        }),
        ("/v1/evaluate", "length_bias", evaluate_schema, |v| {
            v["summary"]["length"].as_object_mut().unwrap().remove("accuracy_preferred_shorter");
        }),
        ("/v1/evaluate", "length_bias", evaluate_schema, |v| {
            v["summary"]["length"]["pairs_preferred_longer"] = json!(0)
        }),
        // The new totals are required.
        ("/v1/evaluate", "worked", evaluate_schema, |v| {
            v["summary"]["totals"].as_object_mut().unwrap().remove("pairs_squares");
        }),
        // A comparison on one list has no standard errors, intervals or p-values; on more, it has.
        ("/v1/compare", "one_list", compare_schema, |v| v["comparisons"][0]["loss_difference_se"] = json!(0.1)),
        ("/v1/compare", "one_list", compare_schema, |v| v["models"][1]["accuracy_ci"] = json!([0.0, 1.0])),
        ("/v1/compare", "two_models", compare_schema, |v| {
            v["comparisons"][0].as_object_mut().unwrap().remove("accuracy_p_value_holm");
        }),
        ("/v1/compare", "three_models", compare_schema, |v| {
            v["models"][2].as_object_mut().unwrap().remove("accuracy_se");
        }),
    ];
    for (path, name, schema, edit) in cases {
        let mut answer = example(path, name);
        spec.assert_valid(schema, &answer, &format!("the {name} answer of {path}"));
        edit(&mut answer);
        assert!(
            !spec.errors(schema, &answer).is_empty(),
            "an edited {name} answer of {path} still validates: {answer}"
        );
    }
}

/// The opt-in figures of `/v1/evaluate` follow the definitions the spec gives ("Math
/// conventions"), checked on the spec's `deeper_figures` example with every pair returned:
/// gradients sum to zero, calibration bins partition the pairs, disagreements are the least
/// probable pairs in the documented order, groups sum their lists, and the summary's τ-b and
/// intervals are what their definitions say.
#[tokio::test]
async fn deeper_figures_follow_their_definitions() {
    let example =
        spec().at("/paths/~1v1~1evaluate/post/requestBody/content/application~1json/examples/deeper_figures/value");
    let mut request = example.clone();
    request["options"]["include_pairs"] = json!(true);
    let answer = evaluate(&TestApp::spawn().await, serde_json::to_vec(&request).expect("serializes")).await;
    assert_status(&answer, 200, None);
    let answer = answer.json();
    let lists = answer["lists"].as_array().expect("lists");
    let pairs_total = number(&answer["summary"]["pairs"]);
    // Gradients: one per item, summing to zero.
    for (list, sent) in lists.iter().zip(request["lists"].as_array().expect("lists")) {
        let gradients: Vec<f64> = list["gradients"].as_array().expect("gradients").iter().map(number).collect();
        assert_eq!(gradients.len(), sent["items"].as_array().expect("items").len());
        let scale = gradients.iter().map(|g| g.abs()).fold(0.0, f64::max);
        assert!(gradients.iter().sum::<f64>().abs() <= 1e-15 + 1e-12 * scale, "{gradients:?} do not sum to zero");
    }
    // Calibration: K bins of equal width on [½, 1] holding every pair; ECE from the bins.
    let k = request["options"]["calibration_bins"].as_u64().expect("K") as usize;
    let bins = answer["calibration"]["bins"].as_array().expect("bins");
    assert_eq!(bins.len(), k);
    let mut ece = 0.0;
    for (j, bin) in bins.iter().enumerate() {
        assert_close(number(&bin["lower"]), 0.5 + j as f64 / (2 * k) as f64, "a bin's lower edge");
        assert_close(number(&bin["upper"]), 0.5 + (j + 1) as f64 / (2 * k) as f64, "a bin's upper edge");
        if bin["count"] != 0 {
            ece +=
                number(&bin["count"]) / pairs_total * (number(&bin["mean_predicted"]) - number(&bin["observed"])).abs();
        }
    }
    let counted: f64 = bins.iter().map(|bin| number(&bin["count"])).sum();
    assert_eq!(counted, pairs_total, "the bins hold every implied pair");
    assert_close(number(&answer["calibration"]["ece"]), ece, "ece");
    // Disagreements: the k least probable implied pairs, lowest first, ties by list then pair.
    let mut all = Vec::new();
    for (index, list) in lists.iter().enumerate() {
        for pair in list["pairs"].as_array().expect("pairs") {
            all.push((number(&pair["probability"]), index, pair["preferred"].clone(), pair["other"].clone()));
        }
    }
    all.sort_by(|x, y| {
        x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)).then_with(|| {
            let key = |p: &(f64, usize, Value, Value)| (p.2.as_u64(), p.3.as_u64());
            key(x).cmp(&key(y))
        })
    });
    let top = request["options"]["top_disagreements"].as_u64().expect("k") as usize;
    let found = answer["disagreements"].as_array().expect("disagreements");
    assert_eq!(found.len(), top.min(all.len()));
    for (disagreement, expected) in found.iter().zip(&all) {
        let got = (number(&disagreement["probability"]), disagreement["list"].as_u64().expect("list") as usize);
        assert_eq!(got, (expected.0, expected.1), "{disagreement}");
        assert_eq!((&disagreement["preferred"], &disagreement["other"]), (&expected.2, &expected.3));
        assert_eq!(disagreement["list_id"], lists[expected.1]["id"]);
    }
    // Groups: in order of first appearance, summing their lists; the macro accuracy their mean.
    let mut order: Vec<String> = Vec::new();
    for sent in request["lists"].as_array().expect("lists") {
        let group = sent["group"].as_str().expect("a group").to_string();
        if !order.contains(&group) {
            order.push(group);
        }
    }
    let groups = answer["groups"].as_array().expect("groups");
    assert_eq!(groups.iter().map(|g| g["group"].as_str().expect("name").to_string()).collect::<Vec<_>>(), order);
    let mut accuracies = Vec::new();
    for group in groups {
        let members: Vec<&Value> = lists
            .iter()
            .zip(request["lists"].as_array().expect("lists"))
            .filter(|(_, sent)| sent["group"] == group["group"])
            .map(|(list, _)| list)
            .collect();
        assert_eq!(group["lists"], json!(members.len()));
        let pairs: f64 = members.iter().map(|list| number(&list["pairs_count"])).sum();
        assert_eq!(number(&group["pairs"]), pairs);
        let loss = members.iter().map(|list| number(&list["loss"])).sum::<f64>() / members.len() as f64;
        assert_close(number(&group["loss"]), loss, "a group's loss");
        let agreeing: f64 = members.iter().map(|list| number(&list["accuracy"]) * number(&list["pairs_count"])).sum();
        assert_close(number(&group["accuracy"]), agreeing / pairs, "a group's accuracy");
        accuracies.push(number(&group["accuracy"]));
    }
    let macro_accuracy = accuracies.iter().sum::<f64>() / accuracies.len() as f64;
    assert_close(number(&answer["summary"]["macro_accuracy"]), macro_accuracy, "macro_accuracy");
    // τ-b: the mean over the lists; intervals: estimate ± z·SE at the confidence asked for.
    let taus: Vec<f64> = lists.iter().filter_map(|list| list.get("kendall_tau")).map(number).collect();
    assert_close(number(&answer["summary"]["kendall_tau"]), taus.iter().sum::<f64>() / taus.len() as f64, "τ-b");
    assert_eq!(request["options"]["confidence"], 0.9);
    let z = 1.6448536269514722; // Φ⁻¹(0.95)
    let summary = &answer["summary"];
    let (loss, se) = (number(&answer["loss"]), number(&summary["loss_se"]));
    assert_close(number(&summary["loss_ci"][0]), loss - z * se, "loss_ci");
    assert_close(number(&summary["loss_ci"][1]), loss + z * se, "loss_ci");
    let (accuracy, se) = (number(&summary["accuracy"]), number(&summary["accuracy_se"]));
    assert_close(number(&summary["accuracy_ci"][0]), (accuracy - z * se).max(0.0), "accuracy_ci");
    assert_close(number(&summary["accuracy_ci"][1]), (accuracy + z * se).min(1.0), "accuracy_ci");
    // Without groups, no macro accuracy; without the options, none of the opt-in figures.
    let plain = json!({"lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}, {"items": [{"reward": 0.0}, {"reward": 0.0}]}]});
    let answer = evaluate(&TestApp::spawn().await, serde_json::to_vec(&plain).expect("serializes")).await.json();
    for key in ["calibration", "disagreements", "groups"] {
        assert!(answer.get(key).is_none(), "{key} unasked: {answer}");
    }
    assert!(answer["summary"].get("macro_accuracy").is_none());
    assert!(answer["lists"][0].get("gradients").is_none());
    // τ-b is undefined for the list whose rewards all tie: absent there, and out of the mean.
    assert!(answer["lists"][1].get("kendall_tau").is_none());
    assert_eq!(answer["summary"]["kendall_tau"], answer["lists"][0]["kendall_tau"]);
    assert_eq!(answer["summary"]["totals"]["kendall_tau_lists"], 1);
}

#[tokio::test]
async fn evaluations_validate_with_and_without_pairs_and_ids() {
    let app = TestApp::spawn().await;
    let bodies = [
        json!({"lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}, {"reward": 0.5}]}]}),
        json!({"lists": [{"id": "p", "items": [{"id": "a", "reward": 1.0}, {"reward": 0.0}]}]}),
        json!({"options": {"include_pairs": false}, "lists": [{"id": "p", "items": [{"id": "a", "reward": 1.0}, {"id": "b", "reward": 2.0}]}]}),
        json!({"options": {"include_pairs": false, "normalization": "sum"}, "lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]}),
        json!({"options": {"normalization": "comparisons", "beta": 2.5}, "lists": [
            {"items": [{"reward": 3.0, "rank": 2}, {"reward": 1.0, "rank": 1}, {"reward": 0.0, "rank": 2}]},
            {"items": [{"reward": 5.0}, {"reward": 5.0}]}]}),
        // Extreme but finite: probabilities 0 and 1, log-probabilities near −1e3 and −0.
        json!({"options": {"normalization": "sum"}, "lists": [{"items": [{"reward": -500.0}, {"reward": 500.0}]}, {"items": [{"reward": 500.0}, {"reward": -500.0}]}]}),
    ];
    for body in &bodies {
        let answer = evaluate(&app, serde_json::to_vec(body).expect("serializes")).await;
        assert_status(&answer, 200, None);
        let json = answer.json();
        assert_eq!(json["lists"][0].get("pairs").is_some(), body["options"]["include_pairs"] != json!(false));
    }
}

#[tokio::test]
async fn the_request_id_is_echoed_as_documented() {
    let app = TestApp::spawn().await;
    let mut with_id = evaluate_request(VALID, Some("application/json"));
    with_id.headers_mut().insert("x-request-id", "contract-test-7".parse().expect("header value"));
    let answer = app.send(with_id).await;
    spec().check(&Method::POST, "/v1/evaluate", &answer);
    assert_eq!(answer.headers["x-request-id"], "contract-test-7");
    let parameter = spec().at("/components/parameters/RequestId");
    assert_eq!(parameter["name"], "x-request-id");
    assert_eq!(parameter["in"], "header");
    assert_eq!(parameter["required"], false);
    // Generated when the client sends none, on every route.
    for (method, path) in ROUTES.iter().filter(|(method, _)| *method == "GET") {
        let answer = app.send(request_for(method, path)).await;
        assert!(answer.headers.contains_key("x-request-id"), "{method} {path}: no x-request-id");
    }
    // Error bodies carry it too: the client's, or the generated one of the header.
    let mut malformed = evaluate_request("{", Some("application/json"));
    malformed.headers_mut().insert("x-request-id", "contract-test-8".parse().expect("header value"));
    let answer = app.send(malformed).await;
    spec().check(&Method::POST, "/v1/evaluate", &answer);
    assert_eq!(answer.json()["error"]["request_id"], "contract-test-8");
    let answer = app.send(request(Method::GET, "/nowhere")).await;
    let generated = answer.headers["x-request-id"].to_str().expect("text");
    assert_eq!(answer.json()["error"]["request_id"], generated);
}

fn request_for(method: &str, path: &str) -> Request<Body> {
    request(Method::from_bytes(method.as_bytes()).expect("method"), path)
}

#[tokio::test]
async fn malformed_json_and_wrong_media_types_answer_documented_errors() {
    let app = TestApp::spawn().await;
    for body in
        [&b"{\"lists\": [{\"items\": [{\"reward\": 1.0,}]}]}"[..], b"", b"{\"lists\": [", b"{\"lists\": []} x", b"NaN"]
    {
        assert_status(&evaluate(&app, body.to_vec()).await, 400, Some("malformed_json"));
    }
    let invalid_utf8 = b"{\"model\": \"\xff\xfe\", \"lists\": []}".to_vec();
    assert_status(&evaluate(&app, invalid_utf8).await, 400, Some("malformed_json"));

    for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("application/jsonx")]
    {
        let answer = app.send(evaluate_request(VALID, content_type)).await;
        assert_status(&answer, 415, Some("unsupported_media_type"));
        spec().check(&Method::POST, "/v1/evaluate", &answer);
    }
    // application/*+json with parameters is JSON.
    let answer = app.send(evaluate_request(VALID, Some("application/vnd.api+json; charset=utf-8"))).await;
    assert_status(&answer, 200, None);
    spec().check(&Method::POST, "/v1/evaluate", &answer);
}

#[tokio::test]
async fn invalid_requests_answer_documented_422s() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"lists": [{"items": [{"reward": 1.7}, {"reward": "0.4"}]}]}),
            "invalid_type",
            Some("lists[0].items[1].reward"),
        ),
        (
            json!({"model": null, "lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]}),
            "invalid_type",
            Some("model"),
        ),
        (
            json!({"lists": [{"items": [{"reward": 1.0, "rank": 0}, {"reward": 0.0, "rank": 1}]}]}),
            "invalid_value",
            Some("lists[0].items[0].rank"),
        ),
        (
            json!({"options": {"beta": 0}, "lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]}),
            "invalid_value",
            Some("options.beta"),
        ),
        (
            json!({"model": "m".repeat(257), "lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]}),
            "invalid_value",
            Some("model"),
        ),
        (
            json!({"model": "", "lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]}),
            "invalid_value",
            Some("model"),
        ),
        (json!({"lists": [{"items": [{"reward": 1.0}, {"id": 7.5}]}]}), "invalid_type", Some("lists[0].items[1].id")),
        (
            json!({"lists": [{"items": [{"reward": 1.0}, {"rank": 1}]}]}),
            "missing_field",
            Some("lists[0].items[1].reward"),
        ),
        (
            json!({"options": {"normalisation": "sum"}, "lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]}),
            "unknown_field",
            Some("options.normalisation"),
        ),
        (json!({"lists": []}), "empty_batch", Some("lists")),
        (json!({"lists": [{"items": [{"reward": 1.0}]}]}), "too_few_items", Some("lists[0].items")),
        (
            json!({"lists": [{"items": [{"reward": 1.0, "rank": 1}, {"reward": 0.0}]}]}),
            "mixed_ranking",
            Some("lists[0].items[1].rank"),
        ),
        (
            json!({"lists": [{"items": [{"reward": 1.0, "rank": 3}, {"reward": 0.0, "rank": 3}]}]}),
            "no_preferences",
            Some("lists[0].items"),
        ),
        (
            json!({"lists": [{"items": [{"reward": 1.7e308}, {"reward": -1.7e308}]}]}),
            "non_finite_result",
            Some("lists[0].items[0].reward"),
        ),
        // Input formats: errors name the field as the client wrote it.
        (
            json!({"lists": [{"chosen_reward": 1.2, "rejected_reward": 0.3}]}),
            "unknown_field",
            Some("lists[0].chosen_reward"),
        ),
        (
            json!({"lists": [{"items": [{"reward": 1.0}, {"reward": 0.0, "rating": 3}]}]}),
            "unknown_field",
            Some("lists[0].items[1].rating"),
        ),
        (
            json!({"options": {"format": "pairs"}, "lists": [{"chosen_reward": 1.2}]}),
            "missing_field",
            Some("lists[0].rejected_reward"),
        ),
        (
            json!({"options": {"format": "pairs"}, "lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]}),
            "unknown_field",
            Some("lists[0].items"),
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["b", ["a", "c"]], "rewards": {"b": 1, "c": 0}}]}),
            "invalid_value",
            Some("lists[0].ranking[1][0]"),
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["x", "b"], "rewards": {"b": 1, "c": 0}}]}),
            "invalid_value",
            Some("lists[0].ranking[0]"),
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", "b", ["a"]], "rewards": {"a": 1, "b": 0}}]}),
            "invalid_value",
            Some("lists[0].ranking[2][0]"),
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", "b"], "rewards": {"a": 1, "b": 0, "d": 2}}]}),
            "invalid_value",
            Some("lists[0].rewards.d"),
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", "b"]}]}),
            "missing_field",
            Some("lists[0].rewards"),
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a"], "rewards": {"a": 1}}]}),
            "too_few_items",
            Some("lists[0].ranking"),
        ),
        (
            json!({"options": {"format": "ratings"}, "lists": [{"items": [{"rating": 2, "reward": 1.0}, {"reward": 0.0}]}]}),
            "missing_field",
            Some("lists[0].items[1].rating"),
        ),
        (
            json!({"options": {"format": "ratings"}, "lists": [{"items": [{"rating": 2, "reward": 1.0}, {"rating": 1, "reward": 0.0, "rank": 2}]}]}),
            "unknown_field",
            Some("lists[0].items[1].rank"),
        ),
        (
            json!({"options": {"format": "ratings"}, "lists": [{"items": [{"rating": 2, "reward": 1.0}, {"rating": 2, "reward": 0.0}]}]}),
            "no_preferences",
            Some("lists[0].items"),
        ),
        (
            json!({"options": {"format": "ranks_zero_based"}, "lists": [{"items": [{"reward": 1.0, "rank": -1}, {"reward": 0.0, "rank": 0}]}]}),
            "invalid_value",
            Some("lists[0].items[0].rank"),
        ),
        (
            json!({"options": {"format": "pairs"}, "lists": [{"chosen_reward": 1.7e308, "rejected_reward": -1.7e308}]}),
            "non_finite_result",
            Some("lists[0].chosen_reward"),
        ),
        (
            json!({"options": {"format": "Pairs"}, "lists": [{"chosen_reward": 1.2, "rejected_reward": 0.3}]}),
            "invalid_value",
            Some("options.format"),
        ),
        // The deeper figures' options and `group`.
        (
            json!({"options": {"confidence": 1}, "lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]}),
            "invalid_value",
            Some("options.confidence"),
        ),
        (
            json!({"options": {"calibration_bins": 101}, "lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]}),
            "invalid_value",
            Some("options.calibration_bins"),
        ),
        (
            json!({"options": {"top_disagreements": 0}, "lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]}),
            "invalid_value",
            Some("options.top_disagreements"),
        ),
        (
            json!({"options": {"include_gradients": "true"}, "lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]}),
            "invalid_type",
            Some("options.include_gradients"),
        ),
        (
            json!({"lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}, {"group": "g".repeat(257), "items": [{"reward": 1.0}, {"reward": 0.0}]}]}),
            "invalid_value",
            Some("lists[1].group"),
        ),
        (
            json!({"lists": [{"group": null, "items": [{"reward": 1.0}, {"reward": 0.0}]}]}),
            "invalid_type",
            Some("lists[0].group"),
        ),
        (json!("lists"), "invalid_type", None),
    ];
    for (body, code, path) in cases {
        let answer = evaluate(&app, serde_json::to_vec(&body).expect("serializes")).await;
        assert_status(&answer, 422, Some(code));
        assert_eq!(answer.error_path().as_deref(), path, "{body}");
    }
    let beyond_f64 = r#"{"lists": [{"items": [{"reward": 1e400}, {"reward": 0.0}]}]}"#;
    assert_status(&evaluate(&app, beyond_f64).await, 422, Some("number_out_of_range"));
}

#[tokio::test]
async fn limits_answer_documented_413_and_422s() {
    let app = TestApp::builder()
        .max_body_bytes(256)
        .with(|c| {
            c.max_items_per_list = 3;
            c.max_lists = 2;
            c.max_pairs = 2;
            c.max_evaluated_pairs = 5;
        })
        .build()
        .await;
    let large = format!(r#"{{"lists": [{{"items": [{}]}}]}}"#, vec![r#"{"reward": 1.0}"#; 40].join(", "));
    assert_status(&evaluate(&app, large).await, 413, Some("payload_too_large"));
    let cases = [
        (json!({"lists": [{"items": [{"reward": 1}, {"reward": 2}, {"reward": 3}, {"reward": 4}]}]}), "too_many_items"),
        (
            json!({"lists": [{"items": [{"reward": 1}, {"reward": 2}]}, {"items": [{"reward": 1}, {"reward": 2}]}, {"items": [{"reward": 1}, {"reward": 2}]}]}),
            "too_many_lists",
        ),
        (json!({"lists": [{"items": [{"reward": 1}, {"reward": 2}, {"reward": 3}]}]}), "too_many_pairs"),
        (
            json!({"options": {"include_pairs": false}, "lists": [{"items": [{"reward": 1}, {"reward": 2}, {"reward": 3}]}, {"items": [{"reward": 1}, {"reward": 2}, {"reward": 3}]}]}),
            "too_many_pairs",
        ),
    ];
    for (body, code) in cases {
        let answer = evaluate(&app, serde_json::to_vec(&body).expect("serializes")).await;
        assert_status(&answer, 422, Some(code));
    }
    // The same limits on /v1/compare, where the implied pairs count once per model.
    let large = format!(
        r#"{{"models": ["a", "b"], "lists": [{{"items": [{}]}}]}}"#,
        vec![r#"{"rewards": [1, 0]}"#; 40].join(", ")
    );
    assert_status(&compare(&app, large).await, 413, Some("payload_too_large"));
    let items = |n: usize| json!((0..n).map(|k| json!({"rewards": [k, k]})).collect::<Vec<_>>());
    let cases = [
        (json!({"models": ["a", "b"], "lists": [{"items": items(4)}]}), "too_many_items", "lists[0].items"),
        (
            json!({"models": ["a", "b"], "lists": [{"items": items(2)}, {"items": items(2)}, {"items": items(2)}]}),
            "too_many_lists",
            "lists",
        ),
        // 3 pairs under each of 2 models: 6 to evaluate, past 5.
        (json!({"models": ["a", "b"], "lists": [{"items": items(3)}]}), "too_many_pairs", "lists"),
    ];
    for (body, code, path) in cases {
        let answer = compare(&app, serde_json::to_vec(&body).expect("serializes")).await;
        assert_status(&answer, 422, Some(code));
        assert_eq!(answer.error_path().as_deref(), Some(path), "{body}");
    }
    let answer =
        compare(&app, serde_json::to_vec(&json!({"models": ["a"], "lists": [{"items": items(3)}]})).unwrap()).await;
    assert_status(&answer, 422, Some("invalid_value"));
}

#[tokio::test]
async fn a_full_queue_answers_a_documented_503() {
    let app = TestApp::builder().workers(1).queue_depth(1).build().await;
    // Occupy the only worker, then the only queue slot.
    let held = hold_worker(&app.state);
    let queued = app.state.pool.submit(|_| ()).expect("the queue admits one");

    let answer = evaluate(&app, VALID).await;
    assert_status(&answer, 503, Some("queue_full"));
    assert!(answer.headers.contains_key(header::RETRY_AFTER));
    let answer = compare(&app, VALID_COMPARE).await;
    assert_status(&answer, 503, Some("queue_full"));
    assert!(answer.headers.contains_key(header::RETRY_AFTER));
    // Readiness and liveness do no work: documented answers while saturated.
    let health = app.send(request(Method::GET, "/healthz")).await;
    spec().check(&Method::GET, "/healthz", &health);

    held.release().await;
    queued.wait().await.expect("the queued job ends");
    assert_status(&evaluate(&app, VALID).await, 200, None);
}

#[tokio::test]
async fn a_missing_or_wrong_token_answers_a_documented_401_when_tokens_are_configured() {
    let app = TestApp::builder().api_tokens("contract-token").build().await;
    for (_, path) in ROUTES.iter().filter(|(method, _)| *method == "POST") {
        for authorization in [None, Some("Bearer wrong-token"), Some("Basic Y29udHJhY3Q6dG9rZW4=")] {
            let mut request = valid_post(path);
            if let Some(value) = authorization {
                request.headers_mut().insert(header::AUTHORIZATION, value.parse().expect("header value"));
            }
            let answer = app.send(request).await;
            assert_status(&answer, 401, Some("unauthorized"));
            assert!(answer.headers.contains_key(header::WWW_AUTHENTICATE), "{authorization:?}: no WWW-Authenticate");
            spec().check(&Method::POST, path, &answer);
        }
        let mut request = valid_post(path);
        request.headers_mut().insert(header::AUTHORIZATION, "Bearer contract-token".parse().expect("header value"));
        assert_status(&app.send(request).await, 200, None);
        let security = &spec().at(&pointer(&["paths", path, "post"]))["security"];
        assert_eq!(security, &json!([{}, {"apiToken": []}]), "auth on {path} is optional (off by default)");
    }
    // The other routes stay open, as documented (no security on them).
    for (method, path) in ROUTES.iter().filter(|(method, _)| *method == "GET") {
        let answer = app.send(request_for(method, path)).await;
        assert_status(&answer, 200, None);
        let operation = spec().at(&pointer(&["paths", path, "get"]));
        assert!(operation.get("security").is_none(), "GET {path} documents security it does not need");
    }
}

/// The request timeout (1 s here: the smallest setting) answers the documented 408 to a request
/// still waiting for a worker.
#[tokio::test]
async fn a_request_past_the_timeout_answers_a_documented_408() {
    let app = TestApp::builder().workers(1).queue_depth(4).request_timeout_secs(1).build().await;
    let held = hold_worker(&app.state);

    let answer = evaluate(&app, VALID).await;
    assert_status(&answer, 408, Some("request_timeout"));
    assert_eq!(answer.headers[header::CONNECTION], "close");

    held.release().await;
}

/// The request schema and the server agree on what is a valid request, in every input format,
/// with the documented gaps that JSON Schema cannot express: all ranks (or ratings) equal, an
/// overflowing reward spread, and in format `ranking` the rules across `ranking` and `rewards` (a
/// ranked id without a reward, a reward for an id not ranked, an id ranked in two positions).
#[tokio::test]
async fn the_request_schema_and_the_server_agree() {
    let spec = spec();
    let schema = "/components/schemas/EvaluateRequest";
    let items = || json!([{"reward": 1.0}, {"reward": 0.0}]);
    let emoji_64 = "\u{1F600}".repeat(64); // 64 characters, 256 bytes: the safe maxLength
    let emoji_256 = "\u{1F600}".repeat(256); // 1024 bytes
    let cases: Vec<(Value, bool, u16)> = vec![
        (json!({"lists": [{"items": items()}]}), true, 200),
        (
            json!({"model": emoji_64, "lists": [{"id": emoji_256, "items": [{"id": emoji_256, "reward": 1}, {"reward": 0}]}]}),
            true,
            200,
        ),
        (
            json!({"options": {"normalization": "sum", "include_pairs": false, "beta": 1e-300}, "lists": [{"items": items()}]}),
            true,
            200,
        ),
        (json!({"lists": [{"items": [{"reward": 1, "rank": 2.0}, {"reward": 0, "rank": 1}]}]}), true, 200),
        (
            json!({"lists": [{"items": [{"reward": 1, "rank": 9_007_199_254_740_992_u64}, {"reward": 0, "rank": 1}]}]}),
            true,
            200,
        ),
        (
            json!({"options": {}, "lists": [{"items": [{"reward": 1, "rank": 1}, {"reward": 0, "rank": 1}, {"reward": 0, "rank": 2}]}]}),
            true,
            200,
        ),
        (json!({"model": null, "lists": [{"items": items()}]}), false, 422),
        (json!({"model": "", "lists": [{"items": items()}]}), false, 422),
        (json!({"options": null, "lists": [{"items": items()}]}), false, 422),
        (json!({"lists": [{"id": null, "items": items()}]}), false, 422),
        (json!({"lists": [{"items": [{"reward": 1.0, "rank": null}, {"reward": 0.0}]}]}), false, 422),
        (json!({"lists": [{"items": items()}], "extra": 1}), false, 422),
        (json!({"options": {"normalisation": "sum"}, "lists": [{"items": items()}]}), false, 422),
        (json!({"lists": [{"items": items(), "weight": 2}]}), false, 422),
        (json!({"lists": [{"items": [{"reward": 1.0, "score": 1}, {"reward": 0.0}]}]}), false, 422),
        (json!({"lists": [{"items": [{"reward": "1.0"}, {"reward": 0.0}]}]}), false, 422),
        (json!({"lists": [{"items": [{"reward": true}, {"reward": 0.0}]}]}), false, 422),
        (json!({"lists": [{"items": [{"id": "a"}, {"reward": 0.0}]}]}), false, 422),
        (json!({"model": "m"}), false, 422),
        (json!({"lists": []}), false, 422),
        (json!({"lists": [{"items": [{"reward": 1.0}]}]}), false, 422),
        (json!({"lists": [{"items": [{"reward": 1.0, "rank": 0}, {"reward": 0.0, "rank": 1}]}]}), false, 422),
        (json!({"lists": [{"items": [{"reward": 1.0, "rank": 1.5}, {"reward": 0.0, "rank": 1}]}]}), false, 422),
        (json!({"lists": [{"items": [{"reward": 1.0, "rank": -1}, {"reward": 0.0, "rank": 1}]}]}), false, 422),
        (json!({"lists": [{"items": [{"reward": 1.0, "rank": 1e300}, {"reward": 0.0, "rank": 1}]}]}), false, 422),
        (json!({"lists": [{"items": [{"reward": 1.0, "rank": 1}, {"reward": 0.0}]}]}), false, 422),
        (json!({"options": {"beta": 0}, "lists": [{"items": items()}]}), false, 422),
        (json!({"options": {"beta": -1.5}, "lists": [{"items": items()}]}), false, 422),
        (json!({"options": {"normalization": "mean"}, "lists": [{"items": items()}]}), false, 422),
        (json!({"options": {"include_pairs": "true"}, "lists": [{"items": items()}]}), false, 422),
        (json!({"options": [], "lists": [{"items": items()}]}), false, 422),
        (json!({"lists": [{"items": [[1.0], [0.0]]}]}), false, 422),
        (json!({"lists": [[{"reward": 1.0}, {"reward": 0.0}]]}), false, 422),
        (json!([{"items": items()}]), false, 422),
        // The deeper figures: options at and past their bounds, `group` in every format.
        (json!({"options": {"confidence": 0.5}, "lists": [{"items": items()}]}), true, 200),
        (json!({"options": {"confidence": 0.999_999}, "lists": [{"items": items()}]}), true, 200),
        (json!({"options": {"confidence": 0}, "lists": [{"items": items()}]}), false, 422),
        (json!({"options": {"confidence": 1}, "lists": [{"items": items()}]}), false, 422),
        (json!({"options": {"confidence": -0.5}, "lists": [{"items": items()}]}), false, 422),
        (json!({"options": {"confidence": "0.9"}, "lists": [{"items": items()}]}), false, 422),
        (json!({"options": {"calibration_bins": 1}, "lists": [{"items": items()}]}), true, 200),
        (json!({"options": {"calibration_bins": 100}, "lists": [{"items": items()}]}), true, 200),
        (json!({"options": {"calibration_bins": 4.0}, "lists": [{"items": items()}]}), true, 200),
        (json!({"options": {"calibration_bins": 0}, "lists": [{"items": items()}]}), false, 422),
        (json!({"options": {"calibration_bins": 101}, "lists": [{"items": items()}]}), false, 422),
        (json!({"options": {"calibration_bins": 2.5}, "lists": [{"items": items()}]}), false, 422),
        (json!({"options": {"top_disagreements": 1}, "lists": [{"items": items()}]}), true, 200),
        (json!({"options": {"top_disagreements": 1000}, "lists": [{"items": items()}]}), true, 200),
        (json!({"options": {"top_disagreements": 0}, "lists": [{"items": items()}]}), false, 422),
        (json!({"options": {"top_disagreements": 1001}, "lists": [{"items": items()}]}), false, 422),
        (json!({"options": {"top_disagreements": -1}, "lists": [{"items": items()}]}), false, 422),
        (json!({"options": {"include_gradients": true}, "lists": [{"items": items()}]}), true, 200),
        (json!({"options": {"include_gradients": false}, "lists": [{"items": items()}]}), true, 200),
        (json!({"options": {"include_gradients": "yes"}, "lists": [{"items": items()}]}), false, 422),
        (json!({"options": {"include_gradients": null}, "lists": [{"items": items()}]}), false, 422),
        (json!({"options": {"include_pair_ids": true}, "lists": [{"items": items()}]}), true, 200),
        (
            json!({"options": {"include_pair_ids": true}, "lists": [{"items": [{"id": "a", "reward": 1.0}, {"reward": 0.5}, {"id": "c\"\n", "reward": 0.0}]}]}),
            true,
            200,
        ),
        (json!({"options": {"include_pair_ids": false}, "lists": [{"items": items()}]}), true, 200),
        (
            json!({"options": {"include_pair_ids": true, "include_pairs": false}, "lists": [{"items": items()}]}),
            true,
            200,
        ),
        (json!({"options": {"include_pair_ids": "yes"}, "lists": [{"items": items()}]}), false, 422),
        (json!({"options": {"include_pair_ids": null}, "lists": [{"items": items()}]}), false, 422),
        (
            json!({"options": {"include_pairs": false, "include_gradients": true, "calibration_bins": 10, "top_disagreements": 3, "confidence": 0.8}, "lists": [{"group": "a", "items": items()}, {"group": "b", "items": items()}]}),
            true,
            200,
        ),
        (json!({"lists": [{"group": emoji_64, "items": items()}]}), true, 200),
        (json!({"lists": [{"group": "", "items": items()}]}), true, 200),
        (json!({"lists": [{"group": "g".repeat(257), "items": items()}]}), false, 422),
        (json!({"lists": [{"group": "\u{1F600}".repeat(65), "items": items()}]}), false, 422),
        (json!({"lists": [{"group": 7, "items": items()}]}), false, 422),
        (json!({"lists": [{"group": null, "items": items()}]}), false, 422),
        (
            json!({"options": {"format": "pairs"}, "lists": [{"group": "g", "chosen_reward": 1.2, "rejected_reward": 0.3}]}),
            true,
            200,
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"group": "g", "ranking": ["a", "b"], "rewards": {"a": 1, "b": 0}}]}),
            true,
            200,
        ),
        (
            json!({"options": {"format": "ratings"}, "lists": [{"group": "g", "items": [{"rating": 2, "reward": 1}, {"rating": 1, "reward": 0}]}]}),
            true,
            200,
        ),
        (json!({"options": {"format": "ranks_zero_based"}, "lists": [{"group": "g", "items": items()}]}), true, 200),
        (json!({"lists": [{"items": [{"reward": 1.0, "group": "g"}, {"reward": 0.0}]}]}), false, 422),
        // Input formats, valid: each format's lists under its `options.format`. serde_json sorts
        // keys, so `options` follows `lists` in every body here: the server decodes the lists
        // before it knows their format.
        (json!({"options": {"format": "native"}, "lists": [{"items": items()}]}), true, 200),
        (
            json!({"options": {"format": "pairs"}, "lists": [{"id": "p", "chosen_reward": 1.2, "rejected_reward": 0.3}]}),
            true,
            200,
        ),
        (json!({"options": {"format": "pairs"}, "lists": [{"chosen_reward": 1, "rejected_reward": 1}]}), true, 200),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"id": "r", "ranking": ["b", ["a", "c"], "d"], "rewards": {"a": 0.1, "b": 2.0, "c": 0.4, "d": -1}}]}),
            true,
            200,
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": [["a"], "b"], "rewards": {"a": 1, "b": 0}}]}),
            true,
            200,
        ),
        // An empty tie holds no item: most likely a client bug, so it is refused.
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", [], "b"], "rewards": {"a": 1, "b": 0}}]}),
            false,
            422,
        ),
        (
            json!({"options": {"format": "ratings"}, "lists": [{"id": "u", "items": [{"id": "a", "rating": 4.5, "reward": 1.2}, {"rating": 2, "reward": 0.3}, {"rating": 4.5, "reward": 0}]}]}),
            true,
            200,
        ),
        (
            json!({"options": {"format": "ratings"}, "lists": [{"items": [{"rating": -0.0, "reward": 1}, {"rating": 0.0, "reward": 0}, {"rating": -1, "reward": 0}]}]}),
            true,
            200,
        ),
        (
            json!({"options": {"format": "ranks_zero_based"}, "lists": [{"items": [{"reward": 1, "rank": 1}, {"reward": 0, "rank": 0}]}]}),
            true,
            200,
        ),
        (json!({"options": {"format": "ranks_zero_based"}, "lists": [{"items": items()}]}), true, 200),
        (
            json!({"options": {"format": "ranks_zero_based"}, "lists": [{"items": [{"reward": 1, "rank": 9_007_199_254_740_992_u64}, {"reward": 0, "rank": 0}]}]}),
            true,
            200,
        ),
        // Input formats, invalid: a format's fields under another format, or missing, or mistyped.
        (json!({"options": {"format": "pairs"}, "lists": [{"items": items()}]}), false, 422),
        (json!({"lists": [{"chosen_reward": 1.2, "rejected_reward": 0.3}]}), false, 422),
        (json!({"options": {"format": "native"}, "lists": [{"items": items(), "chosen_reward": 1}]}), false, 422),
        (json!({"options": {"format": "pairs"}, "lists": [{"chosen_reward": 1.2}]}), false, 422),
        (
            json!({"options": {"format": "pairs"}, "lists": [{"chosen_reward": "1.2", "rejected_reward": 0.3}]}),
            false,
            422,
        ),
        (
            json!({"options": {"format": "pairs"}, "lists": [{"chosen_reward": 1.2, "rejected_reward": null}]}),
            false,
            422,
        ),
        (
            json!({"options": {"format": "pairs"}, "lists": [{"chosen_reward": 1, "rejected_reward": 0, "ranking": ["a", "b"]}]}),
            false,
            422,
        ),
        (json!({"options": {"format": "ranking"}, "lists": [{"items": items()}]}), false, 422),
        (json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", "b"]}]}), false, 422),
        (json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a"], "rewards": {"a": 1}}]}), false, 422),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": [["a", "b"]], "rewards": {"a": 1, "b": 0}}]}),
            false,
            422,
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", ["b", "b"]], "rewards": {"a": 1, "b": 0}}]}),
            false,
            422,
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", [["b"]]], "rewards": {"a": 1, "b": 0}}]}),
            false,
            422,
        ),
        (
            // An integer id names the `rewards` key with its digits; a fraction is no id.
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", 1], "rewards": {"a": 1, "1": 0}}]}),
            true,
            200,
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", 1.5], "rewards": {"a": 1, "1.5": 0}}]}),
            false,
            422,
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", "b"], "rewards": {"a": "1", "b": 0}}]}),
            false,
            422,
        ),
        (json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", "b"], "rewards": [1, 0]}]}), false, 422),
        (json!({"options": {"format": "ratings"}, "lists": [{"items": items()}]}), false, 422),
        (
            json!({"options": {"format": "ratings"}, "lists": [{"items": [{"rating": 2, "reward": 1, "rank": 1}, {"rating": 1, "reward": 0, "rank": 2}]}]}),
            false,
            422,
        ),
        (
            json!({"options": {"format": "ratings"}, "lists": [{"items": [{"rating": "2", "reward": 1}, {"rating": 1, "reward": 0}]}]}),
            false,
            422,
        ),
        (json!({"lists": [{"items": [{"rating": 2, "reward": 1}, {"rating": 1, "reward": 0}]}]}), false, 422),
        (
            json!({"options": {"format": "ranks_zero_based"}, "lists": [{"items": [{"reward": 1, "rank": -1}, {"reward": 0, "rank": 0}]}]}),
            false,
            422,
        ),
        (
            json!({"options": {"format": "ranks_zero_based"}, "lists": [{"items": [{"reward": 1, "rank": 0.5}, {"reward": 0, "rank": 0}]}]}),
            false,
            422,
        ),
        (
            json!({"options": {"format": "ranks_zero_based"}, "lists": [{"items": [{"reward": 1, "rank": 0}, {"reward": 0}]}]}),
            false,
            422,
        ),
        (
            json!({"options": {"format": "ranks_zero_based"}, "lists": [{"items": [{"reward": 1, "rank": 0, "rating": 1}, {"reward": 0, "rank": 1}]}]}),
            false,
            422,
        ),
        // Lengths: a number ≥ 0 where each format has one, and nowhere else.
        (json!({"lists": [{"items": [{"reward": 1, "length": 0}, {"reward": 0, "length": 12.5}]}]}), true, 200),
        (
            json!({"options": {"format": "ratings"}, "lists": [{"items": [{"rating": 2, "reward": 1, "length": 3}, {"rating": 1, "reward": 0}]}]}),
            true,
            200,
        ),
        (
            json!({"options": {"format": "ranks_zero_based"}, "lists": [{"items": [{"reward": 1, "rank": 0, "length": 3}, {"reward": 0, "rank": 1, "length": 4}]}]}),
            true,
            200,
        ),
        (
            json!({"options": {"format": "pairs"}, "lists": [{"chosen_reward": 1, "rejected_reward": 0, "chosen_length": 40, "rejected_length": 7}]}),
            true,
            200,
        ),
        (
            json!({"options": {"format": "pairs"}, "lists": [{"chosen_reward": 1, "rejected_reward": 0, "rejected_length": 7}]}),
            true,
            200,
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", "b", "c"], "rewards": {"a": 1, "b": 0, "c": 2}, "lengths": {"c": 5, "a": 9}}]}),
            true,
            200,
        ),
        (json!({"lists": [{"items": [{"reward": 1, "length": -1}, {"reward": 0}]}]}), false, 422),
        (json!({"lists": [{"items": [{"reward": 1, "length": "3"}, {"reward": 0}]}]}), false, 422),
        (json!({"lists": [{"items": [{"reward": 1, "length": null}, {"reward": 0}]}]}), false, 422),
        (json!({"lists": [{"items": items(), "lengths": {"a": 1}}]}), false, 422),
        (json!({"lists": [{"items": items(), "chosen_length": 1}]}), false, 422),
        (
            json!({"options": {"format": "pairs"}, "lists": [{"chosen_reward": 1, "rejected_reward": 0, "chosen_length": -0.5}]}),
            false,
            422,
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", "b"], "rewards": {"a": 1, "b": 0}, "lengths": {"b": -2}}]}),
            false,
            422,
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", "b"], "rewards": {"a": 1, "b": 0}, "lengths": [1, 2]}]}),
            false,
            422,
        ),
        (json!({"options": {"format": "Pairs"}, "lists": [{"chosen_reward": 1, "rejected_reward": 0}]}), false, 422),
        (json!({"options": {"format": null}, "lists": [{"items": items()}]}), false, 422),
        (json!({"options": {"format": 1}, "lists": [{"items": items()}]}), false, 422),
        // Schema-valid, refused by rules JSON Schema cannot state (documented in prose).
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", "b"], "rewards": {"a": 1, "b": 0}, "lengths": {"z": 2}}]}),
            true,
            422,
        ),
        (json!({"lists": [{"items": [{"reward": 1.0, "rank": 2}, {"reward": 0.0, "rank": 2}]}]}), true, 422),
        (json!({"lists": [{"items": [{"reward": 1.7e308}, {"reward": -1.7e308}]}]}), true, 422),
        (
            json!({"options": {"format": "pairs"}, "lists": [{"chosen_reward": 1.7e308, "rejected_reward": -1.7e308}]}),
            true,
            422,
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", ["b", "c"]], "rewards": {"a": 1, "b": 0}}]}),
            true,
            422,
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", "b"], "rewards": {"a": 1, "b": 0, "c": 2}}]}),
            true,
            422,
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", "b", "a"], "rewards": {"a": 1, "b": 0}}]}),
            true,
            422,
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", ["b", "a"]], "rewards": {"a": 1, "b": 0}}]}),
            true,
            422,
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": [[], ["a", "b"]], "rewards": {"a": 1, "b": 0}}]}),
            false,
            422,
        ),
        (
            json!({"options": {"format": "ratings"}, "lists": [{"items": [{"rating": 3, "reward": 1}, {"rating": 3, "reward": 0}]}]}),
            true,
            422,
        ),
        (
            json!({"options": {"format": "ranks_zero_based"}, "lists": [{"items": [{"reward": 1, "rank": 0}, {"reward": 0, "rank": 0}]}]}),
            true,
            422,
        ),
    ];
    let app = TestApp::spawn().await;
    for (body, schema_valid, status) in cases {
        let errors = spec.errors(schema, &body);
        assert_eq!(errors.is_empty(), schema_valid, "schema validity of {body}: {errors:?}");
        let answer = evaluate(&app, serde_json::to_vec(&body).expect("serializes")).await;
        assert_eq!(answer.status.as_u16(), status, "{body}: {}", excerpt(&answer.body));
    }
}

// ----- /v1/evaluate/stream ---------------------------------------------------------------------

const STREAM: &str = "/v1/evaluate/stream";

/// POSTs an NDJSON body to the stream with `query`, checks the answer against the spec, and, for a
/// 200, that every line of the body is a `StreamLine`. Returns the answer and its lines.
async fn stream(app: &TestApp, query: &str, body: impl Into<Body>) -> (Answer, Vec<Value>) {
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("{STREAM}{query}"))
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(body.into())
        .expect("request builds");
    let answer = app.send(request).await;
    spec().check(&Method::POST, STREAM, &answer);
    let mut lines = Vec::new();
    if answer.status == 200 {
        let text = String::from_utf8(answer.body.clone()).expect("the stream is UTF-8");
        assert!(text.ends_with('\n'), "every line of the stream ends with a newline: {text}");
        for line in text.lines() {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            spec().assert_valid("/components/schemas/StreamLine", &value, "a line of the stream");
            lines.push(value);
        }
    }
    (answer, lines)
}

/// The query string of the stream's documented parameter examples.
fn stream_example_query() -> String {
    let operation = "/paths/~1v1~1evaluate~1stream/post";
    let count = spec().at(&format!("{operation}/parameters")).as_array().expect("parameters").len();
    let mut pairs = Vec::new();
    for index in 0..count {
        let (_, parameter) = spec().resolve(format!("{operation}/parameters/{index}"));
        if parameter["in"] != "query" {
            continue;
        }
        let value = match &parameter["example"] {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        pairs.push(format!("{}={value}", parameter["name"].as_str().expect("a name")));
    }
    format!("?{}", pairs.join("&"))
}

/// The stream's request example, sent with the parameters' examples, answers its documented
/// response example byte for byte.
#[tokio::test]
async fn the_stream_example_answers_its_documented_response() {
    let spec = spec();
    let operation = "/paths/~1v1~1evaluate~1stream/post";
    let body = spec.at(&format!("{operation}/requestBody/content/application~1x-ndjson/example"));
    let expected = spec.at(&format!("{operation}/responses/200/content/application~1x-ndjson/example"));
    let (answer, lines) =
        stream(&TestApp::spawn().await, &stream_example_query(), body.as_str().expect("an NDJSON text").to_string())
            .await;
    assert_status(&answer, 200, None);
    assert_eq!(String::from_utf8_lossy(&answer.body), expected.as_str().expect("an NDJSON text"));
    assert!(lines.last().is_some_and(|line| line.get("summary").is_some()), "the summary comes last");
}

/// A stream answers, line by line, what `/v1/evaluate` answers for the same lists, in every input
/// format; its summary has the batch's figures and totals.
#[tokio::test]
async fn a_stream_answers_line_by_line_what_a_batch_answers() {
    let app = TestApp::spawn().await;
    let requests = spec().at("/paths/~1v1~1evaluate/post/requestBody/content/application~1json/examples");
    for (name, example) in requests.as_object().expect("request examples") {
        let request = &example["value"];
        let options = &request["options"];
        // The batch's default: pairs returned (the stream's is none).
        let mut query = vec![format!("include_pairs={}", options.get("include_pairs").unwrap_or(&json!(true)))];
        // Every option a stream takes.
        for key in [
            "normalization",
            "beta",
            "format",
            "confidence",
            "include_gradients",
            "include_pair_ids",
            "calibration_bins",
            "top_disagreements",
        ] {
            if let Some(value) = options.get(key) {
                query.push(format!("{key}={}", value.as_str().map_or_else(|| value.to_string(), str::to_string)));
            }
        }
        let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
        let lists = request["lists"].as_array().expect("lists");
        let body_lines = lists.iter().map(Value::to_string);
        // One blank line first: lines keep their numbers.
        let body: String = std::iter::once(String::new()).chain(body_lines).collect::<Vec<_>>().join("\n");
        let (answer, lines) = stream(&app, &query, body).await;
        assert_status(&answer, 200, None);
        let batch = evaluate(&app, serde_json::to_vec(request).expect("serializes")).await.json();
        assert_eq!(lines.len(), lists.len() + 1, "example {name}: one line per list, then the summary");
        for (index, (line, list)) in lines.iter().zip(batch["lists"].as_array().expect("lists")).enumerate() {
            let mut expected = list.clone();
            expected["line"] = json!(index + 2);
            assert_eq!(line, &expected, "example {name}: line {}", index + 2);
        }
        let summary = &lines[lists.len()]["summary"];
        let batch_summary = &batch["summary"];
        let figures = [
            "lists",
            "pairs",
            "accuracy",
            "chance_loss",
            "kendall_tau",
            "loss_se",
            "loss_ci",
            "accuracy_se",
            "accuracy_ci",
            "macro_accuracy",
            "length",
        ];
        for key in figures {
            assert_eq!(summary.get(key), batch_summary.get(key), "example {name}: summary.{key}");
        }
        // The batch writes calibration beside its summary, the stream in it, with the bins' sums
        // in its totals (for merge).
        assert_eq!(summary.get("calibration"), batch.get("calibration"), "example {name}: calibration");
        let mut totals = summary["totals"].clone();
        totals.as_object_mut().expect("totals").remove("calibration");
        assert_eq!(&totals, &batch_summary["totals"], "example {name}: summary.totals");
        assert_eq!((&summary["loss"], &summary["normalization"]), (&batch["loss"], &batch["normalization"]));
        assert_eq!(summary["lines_failed"], 0);
    }
}

#[tokio::test]
async fn stream_errors_are_documented_lines_and_answers() {
    let app = TestApp::spawn().await;
    // Bad lines get error lines; the stream goes on and counts them.
    let body = [
        r#"{"items": [{"reward": 1.0}, {"reward": "0.5"}]}"#,
        r#"{"chosen_reward": 1.2, "rejected_reward": 0.3}"#,
        "not json",
        r#"{"items": [{"reward": 1.0}]}"#,
        r#"{"group": "g", "items": [{"reward": 1.0}, {"reward": 0.0}]}"#,
        r#"{"items": [{"reward": 1.0}, {"reward": 0.0}]}"#,
    ]
    .join("\r\n");
    let (answer, lines) = stream(&app, "", body).await;
    assert_status(&answer, 200, None);
    let codes: Vec<&Value> = lines.iter().map(|line| &line["error"]["code"]).collect();
    assert_eq!(
        codes,
        [
            &json!("invalid_type"),
            &json!("unknown_field"),
            &json!("malformed_json"),
            &json!("too_few_items"),
            &Value::Null,
            &Value::Null,
            &Value::Null
        ]
    );
    assert_eq!(lines[0]["error"]["path"], "items[1].reward");
    assert_eq!(lines[1]["error"]["path"], "chosen_reward");
    assert_eq!(lines[4]["line"], 5, "a line with a group is evaluated, its group in the summary");
    assert_eq!(lines[6]["summary"]["groups"][0]["group"], "g");
    assert_eq!(lines[5]["line"], 6);
    assert_eq!(lines[6]["summary"]["lines_failed"], 4);
    // Nothing evaluated: a summary without figures.
    let (answer, lines) = stream(&app, "?format=pairs", "").await;
    assert_status(&answer, 200, None);
    assert_eq!(lines.len(), 1);
    assert!(lines[0]["summary"].get("loss").is_none());
    // Parameters are checked before the body is read.
    for (query, code, path) in [
        ("?normalisation=sum", "unknown_field", "normalisation"),
        ("?format=jsonl", "invalid_value", "format"),
        ("?beta=0", "invalid_value", "beta"),
        ("?include_pairs=yes", "invalid_value", "include_pairs"),
        ("?beta=1&beta=2", "invalid_value", "beta"),
        ("?model=other", "invalid_value", "model"),
        ("?model=", "invalid_value", "model"),
        ("?confidence=1", "invalid_value", "confidence"),
        ("?confidence=0", "invalid_value", "confidence"),
        ("?confidence=high", "invalid_value", "confidence"),
        ("?include_gradients=1", "invalid_value", "include_gradients"),
        ("?include_pair_ids=yes", "invalid_value", "include_pair_ids"),
        ("?calibration_bins=101", "invalid_value", "calibration_bins"),
        ("?top_disagreements=0", "invalid_value", "top_disagreements"),
    ] {
        let (answer, _) = stream(&app, query, "").await;
        assert_status(&answer, 422, Some(code));
        assert_eq!(answer.error_path().as_deref(), Some(path), "{query}");
    }
    // The batch's media type is not the stream's.
    let request = Request::builder()
        .method(Method::POST)
        .uri(STREAM)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(VALID))
        .expect("request builds");
    let answer = app.send(request).await;
    assert_status(&answer, 415, Some("unsupported_media_type"));
    spec().check(&Method::POST, STREAM, &answer);
    // A chunk that needs more than the whole memory budget: 413 before a byte is read.
    let small = TestApp::builder().memory_limit(1024).build().await;
    let (answer, _) = stream(&small, "", VALID).await;
    assert_status(&answer, 413, Some("payload_too_large"));
}

// ----- /v1/compare -----------------------------------------------------------------------------

/// A request of `/v1/evaluate` for model `j` of a comparison: the same lists, that model's rewards.
fn model_alone(request: &Value, j: usize) -> Value {
    let mut options = json!({"include_pairs": false});
    for key in ["normalization", "beta", "confidence"] {
        if let Some(value) = request.get("options").and_then(|options| options.get(key)) {
            options[key] = value.clone();
        }
    }
    let lists: Vec<Value> = request["lists"]
        .as_array()
        .expect("lists")
        .iter()
        .map(|list| {
            let items: Vec<Value> = list["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|item| {
                    let mut native = json!({"reward": item["rewards"][j]});
                    for key in ["id", "rank"] {
                        if let Some(value) = item.get(key) {
                            native[key] = value.clone();
                        }
                    }
                    native
                })
                .collect();
            let mut native = json!({"items": items});
            if let Some(id) = list.get("id") {
                native["id"] = id.clone();
            }
            native
        })
        .collect();
    json!({"model": request["models"][j], "options": options, "lists": lists})
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("not a number: {value}"))
}

#[track_caller]
fn assert_close(got: f64, expected: f64, what: &str) {
    assert!((got - expected).abs() <= 1e-12 * expected.abs().max(1.0), "{what}: {got} vs {expected}");
}

/// Each model of a comparison has the figures `/v1/evaluate` gives it alone on the same lists; the
/// comparisons come in model order, their differences are a − b, their intervals estimate ± z·SE,
/// and their Holm-adjusted p-values are never below the raw ones.
#[tokio::test]
async fn each_model_of_a_comparison_is_what_v1_evaluate_answers_for_it_alone() {
    let spec = spec();
    let app = TestApp::spawn().await;
    let requests = spec.at("/paths/~1v1~1compare/post/requestBody/content/application~1json/examples");
    for (name, example) in requests.as_object().expect("request examples") {
        let request = &example["value"];
        let answer = compare(&app, serde_json::to_vec(request).expect("serializes")).await;
        assert_status(&answer, 200, None);
        let answer = answer.json();
        let models = request["models"].as_array().expect("models");
        let mut alone = Vec::new();
        for (j, model) in models.iter().enumerate() {
            let evaluated = evaluate(&app, serde_json::to_vec(&model_alone(request, j)).expect("serializes")).await;
            assert_status(&evaluated, 200, None);
            let evaluated = evaluated.json();
            let figures = &answer["models"][j];
            assert_eq!(&figures["model"], model, "{name}: models in order");
            assert_eq!(figures["loss"], evaluated["loss"], "{name}: {model}'s loss");
            for key in ["accuracy", "chance_loss", "kendall_tau", "loss_se", "loss_ci", "accuracy_se", "accuracy_ci"] {
                assert_eq!(figures.get(key), evaluated["summary"].get(key), "{name}: {model}'s {key}");
            }
            assert_eq!(answer["lists"], evaluated["summary"]["lists"], "{name}");
            assert_eq!(answer["pairs"], evaluated["summary"]["pairs"], "{name}");
            assert_eq!(answer["normalization"], evaluated["normalization"], "{name}");
            alone.push(evaluated);
        }
        let confidence = request["options"].get("confidence").map_or(0.95, number);
        assert_eq!(number(&answer["confidence"]), confidence, "{name}");
        let comparisons = answer["comparisons"].as_array().expect("comparisons");
        let order: Vec<(usize, usize)> =
            (0..models.len()).flat_map(|a| (a + 1..models.len()).map(move |b| (a, b))).collect();
        assert_eq!(comparisons.len(), order.len(), "{name}: one comparison per pair of models");
        for (comparison, &(a, b)) in comparisons.iter().zip(&order) {
            let what = format!("{name}: {} vs {}", models[a], models[b]);
            assert_eq!((&comparison["a"], &comparison["b"]), (&models[a], &models[b]), "{what}: model order");
            let loss = number(&alone[a]["loss"]) - number(&alone[b]["loss"]);
            assert_close(number(&comparison["loss_difference"]), loss, &format!("{what}: loss_difference"));
            let accuracy = number(&alone[a]["summary"]["accuracy"]) - number(&alone[b]["summary"]["accuracy"]);
            assert_close(number(&comparison["accuracy_difference"]), accuracy, &format!("{what}: accuracy_difference"));
            let (mut a_better, mut b_better, mut tied) = (0, 0, 0);
            let lists_of = |k: usize| alone[k]["lists"].as_array().expect("lists").clone();
            for (list_a, list_b) in lists_of(a).iter().zip(&lists_of(b)) {
                let (loss_a, loss_b) = (number(&list_a["loss"]), number(&list_b["loss"]));
                if loss_a < loss_b {
                    a_better += 1;
                } else if loss_a > loss_b {
                    b_better += 1;
                } else {
                    tied += 1;
                }
            }
            assert_eq!(
                (&comparison["lists_a_better"], &comparison["lists_b_better"], &comparison["lists_tied"]),
                (&json!(a_better), &json!(b_better), &json!(tied)),
                "{what}: lists won"
            );
            for figure in ["loss", "accuracy"] {
                let estimate = number(&comparison[format!("{figure}_difference")]);
                let Some(se) = comparison.get(format!("{figure}_difference_se")).map(number) else {
                    assert_eq!(answer["lists"], 1, "{what}: no standard error with two lists or more");
                    continue;
                };
                let ci = &comparison[format!("{figure}_difference_ci")];
                if confidence == 0.95 {
                    let z = 1.959963984540054;
                    assert_close(number(&ci[0]), estimate - z * se, &format!("{what}: {figure} interval"));
                    assert_close(number(&ci[1]), estimate + z * se, &format!("{what}: {figure} interval"));
                }
                let p = number(&comparison[format!("{figure}_p_value")]);
                let holm = number(&comparison[format!("{figure}_p_value_holm")]);
                assert!((0.0..=1.0).contains(&p) && p <= holm && holm <= 1.0, "{what}: p {p}, Holm {holm}");
                if models.len() == 2 {
                    assert_eq!(p, holm, "{what}: one comparison, nothing to adjust");
                }
            }
        }
    }
}

/// The request schema of `/v1/compare` and the server agree on what is a valid comparison, with
/// the documented gaps: `rewards` of a length other than the number of models, all ranks equal,
/// an overflowing reward spread.
#[tokio::test]
async fn the_compare_schema_and_the_server_agree() {
    let spec = spec();
    let schema = "/components/schemas/CompareRequest";
    let items = || json!([{"rewards": [1.0, 0.5]}, {"rewards": [0.0, 0.7]}]);
    let names = |count: usize| json!((0..count).map(|j| format!("rm-{j}")).collect::<Vec<_>>());
    let rewards = |count: usize, value: f64| json!(vec![value; count]);
    let emoji_64 = "\u{1F600}".repeat(64);
    let cases: Vec<(Value, bool, u16)> = vec![
        (json!({"models": ["a", "b"], "lists": [{"items": items()}]}), true, 200),
        (
            json!({"models": ["a", "b"], "options": {"normalization": "sum", "beta": 0.5, "confidence": 0.5}, "lists": [{"items": items()}, {"items": items()}]}),
            true,
            200,
        ),
        (json!({"models": ["a", "b"], "options": {}, "lists": [{"items": items()}]}), true, 200),
        (
            json!({"models": ["a", "b", "c"], "lists": [{"id": "p", "items": [{"id": "x", "rewards": [1, 2, 3], "rank": 2}, {"rewards": [0, 0, 0], "rank": 1.0}, {"rewards": [5, 5, 5], "rank": 2}]}]}),
            true,
            200,
        ),
        (
            json!({"models": names(16), "lists": [{"items": [{"rewards": rewards(16, 1.0)}, {"rewards": rewards(16, 0.0)}]}]}),
            true,
            200,
        ),
        (json!({"models": [emoji_64, "Other"], "lists": [{"items": items()}]}), true, 200),
        (json!({"models": ["a"], "lists": [{"items": [{"rewards": [1]}, {"rewards": [0]}]}]}), false, 422),
        (json!({"models": [], "lists": [{"items": items()}]}), false, 422),
        (
            json!({"models": names(17), "lists": [{"items": [{"rewards": rewards(17, 1.0)}, {"rewards": rewards(17, 0.0)}]}]}),
            false,
            422,
        ),
        (json!({"models": ["a", "a"], "lists": [{"items": items()}]}), false, 422),
        (json!({"models": ["a", "other"], "lists": [{"items": items()}]}), false, 422),
        (json!({"models": ["unspecified", "b"], "lists": [{"items": items()}]}), false, 422),
        (json!({"models": ["a", ""], "lists": [{"items": items()}]}), false, 422),
        (json!({"models": ["a", "m".repeat(257)], "lists": [{"items": items()}]}), false, 422),
        (json!({"models": ["a", 1], "lists": [{"items": items()}]}), false, 422),
        (json!({"models": "a,b", "lists": [{"items": items()}]}), false, 422),
        (json!({"lists": [{"items": items()}]}), false, 422),
        (json!({"models": ["a", "b"]}), false, 422),
        (json!({"models": ["a", "b"], "lists": []}), false, 422),
        (json!({"models": ["a", "b"], "model": "a", "lists": [{"items": items()}]}), false, 422),
        (json!({"models": ["a", "b"], "options": null, "lists": [{"items": items()}]}), false, 422),
        (json!({"models": ["a", "b"], "options": {"include_pairs": false}, "lists": [{"items": items()}]}), false, 422),
        (json!({"models": ["a", "b"], "options": {"format": "native"}, "lists": [{"items": items()}]}), true, 200),
        (json!({"models": ["a", "b"], "options": {"format": "ranking"}, "lists": [{"items": items()}]}), false, 422),
        (
            json!({"models": ["a", "b"], "options": {"format": "pairs"}, "lists": [{"chosen_rewards": [1, 0], "rejected_rewards": [0, 1]}]}),
            true,
            200,
        ),
        (json!({"models": ["a", "b"], "options": {"confidence": 0}, "lists": [{"items": items()}]}), false, 422),
        (json!({"models": ["a", "b"], "options": {"confidence": 1}, "lists": [{"items": items()}]}), false, 422),
        (json!({"models": ["a", "b"], "options": {"beta": 0}, "lists": [{"items": items()}]}), false, 422),
        (
            json!({"models": ["a", "b"], "options": {"normalization": "mean"}, "lists": [{"items": items()}]}),
            false,
            422,
        ),
        (json!({"models": ["a", "b"], "lists": [{"group": "g", "items": items()}]}), false, 422),
        (json!({"models": ["a", "b"], "lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]}), false, 422),
        (json!({"models": ["a", "b"], "lists": [{"items": [{"rewards": [1.0]}, {"rewards": [0.0]}]}]}), false, 422),
        (json!({"models": ["a", "b"], "lists": [{"items": [{"rewards": ["1", 0]}, {"rewards": [0, 0]}]}]}), false, 422),
        (
            json!({"models": ["a", "b"], "lists": [{"items": [{"rewards": [1, null]}, {"rewards": [0, 0]}]}]}),
            false,
            422,
        ),
        (json!({"models": ["a", "b"], "lists": [{"items": [{"rewards": [1, 2]}]}]}), false, 422),
        (
            json!({"models": ["a", "b"], "lists": [{"items": [{"rewards": [1, 2], "rank": 0}, {"rewards": [0, 0], "rank": 1}]}]}),
            false,
            422,
        ),
        (
            json!({"models": ["a", "b"], "lists": [{"items": [{"rewards": [1, 2], "rank": 1.5}, {"rewards": [0, 0], "rank": 1}]}]}),
            false,
            422,
        ),
        (
            json!({"models": ["a", "b"], "lists": [{"items": [{"rewards": [1, 2], "rank": 1}, {"rewards": [0, 0]}]}]}),
            false,
            422,
        ),
        // Schema-valid, refused by rules JSON Schema cannot state (documented in prose).
        (
            json!({"models": ["a", "b"], "lists": [{"items": [{"rewards": [1, 2, 3]}, {"rewards": [0, 0, 0]}]}]}),
            true,
            422,
        ),
        (
            json!({"models": ["a", "b", "c"], "lists": [{"items": [{"rewards": [1, 2]}, {"rewards": [0, 0]}]}]}),
            true,
            422,
        ),
        (
            json!({"models": ["a", "b"], "lists": [{"items": [{"rewards": [1, 2], "rank": 2}, {"rewards": [0, 0], "rank": 2}]}]}),
            true,
            422,
        ),
        (
            json!({"models": ["a", "b"], "lists": [{"items": [{"rewards": [1, 1.7e308]}, {"rewards": [0, -1.7e308]}]}]}),
            true,
            422,
        ),
    ];
    let app = TestApp::spawn().await;
    for (body, schema_valid, status) in cases {
        let errors = spec.errors(schema, &body);
        assert_eq!(errors.is_empty(), schema_valid, "schema validity of {body}: {errors:?}");
        let answer = compare(&app, serde_json::to_vec(&body).expect("serializes")).await;
        assert_eq!(answer.status.as_u16(), status, "{body}: {}", excerpt(&answer.body));
    }
}

/// `/v1/compare` refuses what it cannot compare with documented errors that name the field.
#[tokio::test]
async fn compare_errors_name_the_field() {
    let app = TestApp::spawn().await;
    let items = || json!([{"rewards": [1.0, 0.5]}, {"rewards": [0.0, 0.7]}]);
    let cases = [
        (json!({"models": ["a"], "lists": [{"items": items()}]}), "invalid_value", Some("models")),
        (json!({"models": ["a", "b", "a"], "lists": [{"items": items()}]}), "invalid_value", Some("models[2]")),
        (json!({"models": ["a", "other"], "lists": [{"items": items()}]}), "invalid_value", Some("models[1]")),
        (json!({"models": ["", "b"], "lists": [{"items": items()}]}), "invalid_value", Some("models[0]")),
        (
            json!({"models": ["a", "b"], "lists": [{"items": items()}, {"items": [{"rewards": [1.0, 0.5]}, {"rewards": [0.0]}]}]}),
            "invalid_value",
            Some("lists[1].items[1].rewards"),
        ),
        (
            json!({"models": ["a", "b"], "lists": [{"items": [{"rewards": [1.0, "0.5"]}, {"rewards": [0.0, 0.7]}]}]}),
            "invalid_type",
            Some("lists[0].items[0].rewards[1]"),
        ),
        (
            json!({"models": ["a", "b"], "lists": [{"items": [{"rewards": [1.0, 0.5], "rank": 0}, {"rewards": [0.0, 0.7], "rank": 1}]}]}),
            "invalid_value",
            Some("lists[0].items[0].rank"),
        ),
        (
            json!({"models": ["a", "b"], "lists": [{"items": [{"rewards": [1.0, 0.5], "rank": 1}, {"rewards": [0.0, 0.7]}]}]}),
            "mixed_ranking",
            Some("lists[0].items[1].rank"),
        ),
        (
            json!({"models": ["a", "b"], "lists": [{"items": [{"rewards": [1.0, 1.7e308]}, {"rewards": [0.0, -1.7e308]}]}]}),
            "non_finite_result",
            Some("lists[0].items[0].rewards[1]"),
        ),
        (
            json!({"models": ["a", "b"], "options": {"confidence": 1.5}, "lists": [{"items": items()}]}),
            "invalid_value",
            Some("options.confidence"),
        ),
        (
            json!({"models": ["a", "b"], "options": {"include_pairs": true}, "lists": [{"items": items()}]}),
            "unknown_field",
            Some("options.include_pairs"),
        ),
        (json!({"models": ["a", "b"], "lists": []}), "empty_batch", Some("lists")),
        (
            json!({"models": ["a", "b"], "lists": [{"items": [{"rewards": [1.0, 0.5]}]}]}),
            "too_few_items",
            Some("lists[0].items"),
        ),
        (json!({"models": ["a", "b"]}), "missing_field", Some("lists")),
    ];
    for (body, code, path) in cases {
        let answer = compare(&app, serde_json::to_vec(&body).expect("serializes")).await;
        assert_status(&answer, 422, Some(code));
        assert_eq!(answer.error_path().as_deref(), path, "{body}");
    }
    assert_status(&compare(&app, "{\"models\": [").await, 400, Some("malformed_json"));
    let request = Request::builder()
        .method(Method::POST)
        .uri(COMPARE)
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from(VALID_COMPARE))
        .expect("request builds");
    let answer = app.send(request).await;
    assert_status(&answer, 415, Some("unsupported_media_type"));
    spec().check(&Method::POST, COMPARE, &answer);
}

// ----- error codes -----------------------------------------------------------------------------

fn snake_case(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The variants of `pub enum ErrorCode` in crates/core/src/error.rs, in snake_case (their wire form).
fn error_codes_in_source() -> Vec<String> {
    let source = std::fs::read_to_string(ERROR_RS).unwrap_or_else(|e| panic!("cannot read {ERROR_RS}: {e}"));
    let start = source.find("pub enum ErrorCode {").expect("pub enum ErrorCode in crates/core/src/error.rs");
    let body = &source[start + "pub enum ErrorCode {".len()..];
    let body = &body[..body.find('}').expect("end of ErrorCode")];
    body.lines()
        .map(|line| line.split("//").next().unwrap_or("").trim().trim_end_matches(','))
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(snake_case)
        .collect()
}

fn wire_name(code: ErrorCode) -> String {
    serde_json::to_value(code).expect("serializes").as_str().expect("a code is a string").to_string()
}

#[test]
fn every_error_code_is_documented_under_its_status() {
    let spec = spec();
    let listed: Vec<String> = ERROR_CODES.iter().map(|&code| wire_name(code)).collect();
    assert_eq!(
        error_codes_in_source(),
        listed,
        "ErrorCode in src/api/error.rs changed: update ERROR_CODES here and the ErrorCode enum of openapi.yaml"
    );
    let in_spec: Vec<String> = spec
        .at("/components/schemas/ErrorCode/enum")
        .as_array()
        .expect("ErrorCode.enum")
        .iter()
        .map(|v| v.as_str().expect("a code is a string").to_string())
        .collect();
    assert_eq!(
        in_spec.iter().collect::<BTreeSet<_>>(),
        listed.iter().collect::<BTreeSet<_>>(),
        "the ErrorCode enum of openapi.yaml"
    );
    // Each code is admitted by the error schema of its status, and not by the others.
    let mut by_status: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for code in ERROR_CODES {
        by_status.entry(code.status().as_u16()).or_default().push(wire_name(code));
    }
    let schema_of = |status: u16| -> String {
        let response = if status == 404 {
            pointer(&["components", "responses", "NotFound"])
        } else {
            spec.documented(&Method::POST, "/v1/evaluate", status)
                .unwrap_or_else(|| panic!("status {status} of an error code is not documented on /v1/evaluate"))
        };
        let (at, _) = spec.resolve(response);
        format!("{at}/content/application~1json/schema")
    };
    for (&status, codes) in &by_status {
        for (&other, _) in by_status.iter().filter(|(other, _)| **other != status) {
            for code in codes {
                let body = json!({"error": {"code": code, "message": "m"}});
                assert!(spec.errors(&schema_of(status), &body).is_empty(), "{code} is refused by the {status} schema");
                assert!(!spec.errors(&schema_of(other), &body).is_empty(), "{code} is admitted by the {other} schema");
            }
        }
    }
}

// ----- operational routes ----------------------------------------------------------------------

#[tokio::test]
async fn health_readiness_metrics_and_docs_answer_as_documented() {
    let app = TestApp::spawn().await;
    for (method, path) in ROUTES.iter().filter(|(method, _)| *method == "GET") {
        let answer = app.send(request_for(method, path)).await;
        assert_status(&answer, 200, None);
        spec().check(&Method::GET, path, &answer);
    }
    assert_eq!(app.send(request(Method::GET, "/healthz")).await.json(), json!({"status": "ok"}));
    assert_eq!(app.send(request(Method::GET, "/readyz")).await.json(), json!({"status": "ready"}));

    app.state.begin_draining();
    let answer = app.send(request(Method::GET, "/readyz")).await;
    assert_status(&answer, 503, None);
    assert_eq!(answer.json(), json!({"status": "draining"}));
    spec().check(&Method::GET, "/readyz", &answer);
    // A draining readiness must not pass for ready, nor the other way round.
    let ready_schema = "/paths/~1readyz/get/responses/200/content/application~1json/schema";
    assert!(!spec().errors(ready_schema, &json!({"status": "draining"})).is_empty());
}

#[tokio::test]
async fn metrics_on_their_own_listener_leave_a_documented_404() {
    let app = TestApp::builder().metrics_listener().build().await;
    let answer = app.send(request(Method::GET, "/metrics")).await;
    assert_status(&answer, 404, Some("not_found"));
    spec().check(&Method::GET, "/metrics", &answer);
    // The metrics listener serves the probes too, as the spec's description says.
    let admin = app.metrics_addr.expect("a metrics listener");
    for (path, body) in [("/healthz", json!({"status": "ok"})), ("/readyz", json!({"status": "ready"}))] {
        let answer = tokio::task::spawn_blocking(move || Raw::get(admin, path))
            .await
            .expect("the client thread")
            .expect("an answer");
        assert_status(&answer, 200, None);
        assert_eq!(answer.json(), body, "{path} on the metrics listener");
    }
}

#[test]
fn media_types_match_by_essence_and_named_parameters() {
    assert!(media_type_matches("text/plain; version=0.0.4", "text/plain; version=0.0.4"));
    assert!(media_type_matches("text/plain; version=0.0.4", "text/plain;version=0.0.4; charset=utf-8"));
    assert!(!media_type_matches("text/plain; version=0.0.4", "text/plain"));
    assert!(media_type_matches("text/html", "text/html; charset=utf-8"));
    assert!(!media_type_matches("application/json", "application/yaml"));
}

// ----- the option table against the spec --------------------------------------------------------

/// The option names each door documents are exactly the option table's names for that door: a
/// new table entry that openapi.yaml does not describe (or the reverse) fails here.
#[test]
fn every_door_documents_exactly_the_option_tables_options() {
    use prefeval::pipeline::options::{Door, OptionDef};
    let table = |door| -> Vec<String> {
        let mut names: Vec<String> = OptionDef::of(door).map(|def| def.name.to_string()).collect();
        names.sort();
        names
    };
    let schema_properties = |name: &str| -> Vec<String> {
        let properties = spec().at(&format!("/components/schemas/{name}/properties"));
        let mut names: Vec<String> =
            properties.as_object().unwrap_or_else(|| panic!("{name} has properties")).keys().cloned().collect();
        names.sort();
        names
    };
    assert_eq!(schema_properties("Options"), table(Door::Batch), "POST /v1/evaluate options");
    assert_eq!(schema_properties("CompareOptions"), table(Door::Compare), "POST /v1/compare options");
    // The query parameters of a POST operation (components resolved), but `other`.
    let query = |path: &str, other: &str| -> Vec<String> {
        let at = format!("/paths/{}/post/parameters", escape(path));
        let count = spec().at(&at).as_array().expect("a parameter list").len();
        let mut names: Vec<String> = (0..count)
            .map(|index| spec().resolve(format!("{at}/{index}")).1)
            .filter(|parameter| parameter["in"] == "query")
            .map(|parameter| parameter["name"].as_str().expect("a name").to_string())
            .filter(|name| name != other)
            .collect();
        names.sort();
        names
    };
    assert_eq!(query("/v1/evaluate/stream", "model"), table(Door::Stream), "POST /v1/evaluate/stream (besides model)");
    assert_eq!(
        query("/v1/compare/stream", "models"),
        table(Door::CompareStream),
        "POST /v1/compare/stream query parameters (besides models)"
    );
    // The report takes the evaluate stream's parameters, and `models` for a comparison.
    let mut report = query("/v1/report", "models");
    report.retain(|name| name != "model");
    assert_eq!(report, table(Door::Stream), "POST /v1/report query parameters (besides model and models)");
    assert!(query("/v1/report", "").contains(&"models".to_string()));
}

// ----- /v1/report ------------------------------------------------------------------------------

/// Every answer of `/v1/report`, the report and each kind of refusal, is documented.
#[tokio::test]
async fn report_answers_are_documented() {
    const REPORT: &str = "/v1/report";
    let app = TestApp::builder().max_body_bytes(4096).build().await;
    let ndjson = ("content-type", "application/x-ndjson");
    let long_line = format!("{{\"id\": \"{}\", \"items\": []}}\n", "x".repeat(5000));
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16);
    let cases: [Case<'_>; 9] = [
        ("/v1/report?calibration_bins=4&top_disagreements=2", vec![ndjson], VALID_LINE.repeat(3).into_bytes(), 200),
        ("/v1/report?models=a,b", vec![ndjson], VALID_COMPARE_LINE.repeat(2).into_bytes(), 200),
        ("/v1/report?beta=0", vec![ndjson], VALID_LINE.into(), 422),
        ("/v1/report?models=a,b&top_disagreements=3", vec![ndjson], VALID_COMPARE_LINE.into(), 422),
        ("/v1/report", vec![ndjson], Vec::new(), 422),
        ("/v1/report", vec![ndjson], b"{\"items\": [{\"reward\": 1}]}\n".to_vec(), 422),
        ("/v1/report", vec![ndjson], long_line.into_bytes(), 413),
        ("/v1/report", vec![("content-type", "text/plain")], VALID_LINE.into(), 415),
        ("/v1/report", vec![ndjson, ("content-encoding", "zstd")], VALID_LINE.into(), 400),
    ];
    for (uri, headers, body, status) in cases {
        let answer = app.request(Method::POST, uri, &headers, body).await;
        assert_status(&answer, status, None);
        spec().check(&Method::POST, REPORT, &answer);
    }
    let tokens = TestApp::builder().api_tokens("t0k3n").build().await;
    let answer = tokens.request(Method::POST, REPORT, &[ndjson], VALID_LINE).await;
    assert_status(&answer, 401, Some("unauthorized"));
    spec().check(&Method::POST, REPORT, &answer);
}
