//! Every refusal of the HTTP surface (`docs/design/api.md`, Errors): the exact status, the stable
//! `error.code`, the field `path` where one field is at fault, and always the JSON error body.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};

use crate::helpers::{Answer, TestApp, WORKED_EXAMPLE, WORKED_EXAMPLE_LOSS, close};

/// Asserts the whole shape of an error answer: status, JSON content type, a body that is exactly
/// `{"error": {...}}` with a `code`, a non-empty `message`, and `path` as expected (absent when no
/// single field is at fault).
#[track_caller]
fn assert_error(answer: &Answer, status: u16, code: &str, path: Option<&str>) {
    let text = String::from_utf8_lossy(&answer.body);
    assert_eq!(answer.status.as_u16(), status, "status; body: {text}");
    let content_type = answer.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(content_type.starts_with("application/json"), "Content-Type {content_type:?}; body: {text}");
    let body = answer.json();
    let top: Vec<&String> =
        body.as_object().unwrap_or_else(|| panic!("body is not an object: {text}")).keys().collect();
    assert_eq!(top, ["error"], "top-level keys of {text}");
    assert!(body["error"].is_object(), "error is not an object: {text}");
    assert_eq!(answer.error_code(), code, "error.code; body: {text}");
    let message = body["error"]["message"].as_str().unwrap_or_else(|| panic!("no error.message in {text}"));
    assert!(!message.trim().is_empty(), "empty error.message in {text}");
    assert_eq!(answer.error_path().as_deref(), path, "error.path; body: {text}");
}

fn message(answer: &Answer) -> String {
    answer.json()["error"]["message"].as_str().unwrap_or_default().to_string()
}

fn post_with_content_type(content_type: Option<&str>, body: &'static str) -> Request<Body> {
    let mut builder = Request::builder().method(Method::POST).uri("/v1/evaluate");
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder.body(Body::from(body)).expect("request builds")
}

fn request(method: Method, uri: &str) -> Request<Body> {
    Request::builder().method(method).uri(uri).body(Body::empty()).expect("request builds")
}

fn allow_header(answer: &Answer) -> String {
    answer.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

const VALID: &str = r#"{"lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]}"#;

// ----- 400 malformed JSON ---------------------------------------------------------------------

const NOT_JSON: &str = r#"{"lists": [{"items": [{"reward": 1.0,}, {"reward": 0.0}]}]}"#;
const TRUNCATED: &str = r#"{"lists": [{"items": [{"reward": 1.0}, {"rew"#;
const TRAILING_GARBAGE: &str = r#"{"lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]} {"lists": []}"#;

#[tokio::test]
async fn malformed_json_is_400_malformed_json() {
    let app = TestApp::spawn().await;
    assert_error(&app.evaluate(NOT_JSON).await, 400, "malformed_json", None);
    assert_error(&app.evaluate("lists: []").await, 400, "malformed_json", None);
    // A string that is not UTF-8.
    let invalid_utf8 = b"{\"model\": \"\xff\xfe\", \"lists\": []}".to_vec();
    assert_error(&app.evaluate(invalid_utf8).await, 400, "malformed_json", None);
}

#[tokio::test]
async fn truncated_or_empty_json_is_400_malformed_json() {
    let app = TestApp::spawn().await;
    assert_error(&app.evaluate(TRUNCATED).await, 400, "malformed_json", None);
    assert_error(&app.evaluate("").await, 400, "malformed_json", None);
}

#[tokio::test]
async fn trailing_garbage_after_the_request_is_400_malformed_json() {
    let app = TestApp::spawn().await;
    assert_error(&app.evaluate(TRAILING_GARBAGE).await, 400, "malformed_json", None);
    assert_error(&app.evaluate(format!("{VALID} x")).await, 400, "malformed_json", None);
}

// ----- 415 wrong content type ------------------------------------------------------------------

#[tokio::test]
async fn missing_content_type_is_415_unsupported_media_type() {
    let answer = TestApp::spawn().await.send(post_with_content_type(None, VALID)).await;
    assert_error(&answer, 415, "unsupported_media_type", None);
}

#[tokio::test]
async fn text_plain_content_type_is_415_unsupported_media_type() {
    let app = TestApp::spawn().await;
    for content_type in ["text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded"] {
        let answer = app.send(post_with_content_type(Some(content_type), VALID)).await;
        assert_error(&answer, 415, "unsupported_media_type", None);
    }
    // The same body as JSON is fine: the refusal was about the media type only.
    let answer = app.send(post_with_content_type(Some("application/json; charset=utf-8"), VALID)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer.body));
}

// ----- 413 body over the limit -----------------------------------------------------------------

/// A valid request of at least `bytes` bytes.
fn valid_request_of_at_least(bytes: usize) -> String {
    let mut items = vec![r#"{"reward": 1.0}"#.to_string()];
    while items.iter().map(|i| i.len() + 2).sum::<usize>() + 20 < bytes {
        items.push(format!(r#"{{"reward": {}}}"#, -(items.len() as f64)));
    }
    format!(r#"{{"lists": [{{"items": [{}]}}]}}"#, items.join(", "))
}

#[tokio::test]
async fn body_over_the_limit_is_413_payload_too_large() {
    let app = TestApp::builder().max_body_bytes(1024).build().await;
    let small = valid_request_of_at_least(900);
    assert!(small.len() <= 1024);
    let answer = app.evaluate(small).await;
    assert_eq!(answer.status, StatusCode::OK, "a body under the limit: {}", String::from_utf8_lossy(&answer.body));

    let large = valid_request_of_at_least(2048);
    assert!(large.len() >= 2048);
    let answer = app.evaluate(large.clone()).await;
    assert_error(&answer, 413, "payload_too_large", None);
    let text = message(&answer);
    assert!(text.contains("PREFEVAL_MAX_BODY_BYTES") && text.contains("1024"), "{text}");
    // Announced by Content-Length up front: the same answer.
    let announced = Request::builder()
        .method(Method::POST)
        .uri("/v1/evaluate")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, large.len())
        .body(Body::from(large))
        .expect("request builds");
    assert_error(&app.send(announced).await, 413, "payload_too_large", None);
}

// ----- 404 / 405 -------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_route_is_404_not_found() {
    let app = TestApp::spawn().await;
    assert_error(&app.get("/v1/nothing-here").await, 404, "not_found", None);
    let answer = app
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/v2/evaluate")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(VALID))
                .expect("request builds"),
        )
        .await;
    assert_error(&answer, 404, "not_found", None);
}

#[tokio::test]
async fn get_on_evaluate_is_405_with_allow_post() {
    let answer = TestApp::spawn().await.get("/v1/evaluate").await;
    assert_error(&answer, 405, "method_not_allowed", None);
    assert!(allow_header(&answer).contains("POST"), "Allow: {:?}", allow_header(&answer));
}

#[tokio::test]
async fn custom_query_method_is_405_with_allow_not_501() {
    let app = TestApp::spawn().await;
    let query = Method::from_bytes(b"QUERY").expect("QUERY is a valid method token");
    let answer = app.send(request(query.clone(), "/v1/evaluate")).await;
    assert_error(&answer, 405, "method_not_allowed", None);
    assert!(allow_header(&answer).contains("POST"), "Allow: {:?}", allow_header(&answer));
    for method in [Method::PUT, Method::DELETE, Method::PATCH] {
        let answer = app.send(request(method, "/v1/evaluate")).await;
        assert_error(&answer, 405, "method_not_allowed", None);
        assert!(allow_header(&answer).contains("POST"), "Allow: {:?}", allow_header(&answer));
    }
    let answer = app.send(request(query, "/healthz")).await;
    assert_error(&answer, 405, "method_not_allowed", None);
    assert!(allow_header(&answer).contains("GET"), "Allow: {:?}", allow_header(&answer));
}

// ----- 422 wrong types -------------------------------------------------------------------------

const STRING_REWARD: &str = r#"{"lists": [{"items": [{"reward": 1.0}, {"reward": "1.5"}]}]}"#;
const STRING_INCLUDE_PAIRS: &str =
    r#"{"options": {"include_pairs": "true"}, "lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]}"#;
const NULL_BETA: &str = r#"{"options": {"beta": null}, "lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]}"#;
const ITEMS_AS_ARRAYS: &str = r#"{"lists": [{"items": [[null, 1.0], [null, 0.0]]}]}"#;

#[tokio::test]
async fn string_reward_is_422_invalid_type_at_the_reward() {
    let answer = TestApp::spawn().await.evaluate(STRING_REWARD).await;
    assert_error(&answer, 422, "invalid_type", Some("lists[0].items[1].reward"));
}

#[tokio::test]
async fn null_reward_is_422_invalid_type_at_the_reward() {
    let body = r#"{"lists": [{"items": [{"reward": null}, {"reward": 0.0}]}]}"#;
    assert_error(&TestApp::spawn().await.evaluate(body).await, 422, "invalid_type", Some("lists[0].items[0].reward"));
}

#[tokio::test]
async fn string_include_pairs_is_422_invalid_type() {
    let answer = TestApp::spawn().await.evaluate(STRING_INCLUDE_PAIRS).await;
    assert_error(&answer, 422, "invalid_type", Some("options.include_pairs"));
}

#[tokio::test]
async fn string_include_pair_ids_is_422_invalid_type_naming_the_field() {
    let body = r#"{"options": {"include_pair_ids": "yes"}, "lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]}"#;
    let answer = TestApp::spawn().await.evaluate(body).await;
    assert_error(&answer, 422, "invalid_type", Some("options.include_pair_ids"));
    let message = answer.json()["error"]["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("expected a boolean"), "{message}");
}

#[tokio::test]
async fn null_beta_is_422_invalid_type_not_the_default() {
    assert_error(&TestApp::spawn().await.evaluate(NULL_BETA).await, 422, "invalid_type", Some("options.beta"));
}

#[tokio::test]
async fn items_given_as_arrays_are_422_invalid_type() {
    assert_error(
        &TestApp::spawn().await.evaluate(ITEMS_AS_ARRAYS).await,
        422,
        "invalid_type",
        Some("lists[0].items[0]"),
    );
}

#[tokio::test]
async fn wrong_container_types_are_422_invalid_type() {
    let app = TestApp::spawn().await;
    assert_error(&app.evaluate("[1, 2]").await, 422, "invalid_type", None);
    assert_error(&app.evaluate(r#"{"lists": null}"#).await, 422, "invalid_type", Some("lists"));
    assert_error(&app.evaluate(r#"{"lists": {"items": []}}"#).await, 422, "invalid_type", Some("lists"));
    let numeric_model = r#"{"model": 7, "lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]}"#;
    assert_error(&app.evaluate(numeric_model).await, 422, "invalid_type", Some("model"));
}

// ----- 422 missing and unknown fields ----------------------------------------------------------

const MISSING_REWARD: &str = r#"{"lists": [{"items": [{"id": "a"}, {"reward": 0.0}]}]}"#;
const UNKNOWN_FIELD: &str = r#"{"lists": [{"items": [{"reward": 1.0, "score": 2.0}, {"reward": 0.0}]}]}"#;

#[tokio::test]
async fn missing_reward_is_422_missing_field_at_the_reward() {
    let answer = TestApp::spawn().await.evaluate(MISSING_REWARD).await;
    assert_error(&answer, 422, "missing_field", Some("lists[0].items[0].reward"));
}

#[tokio::test]
async fn missing_lists_is_422_missing_field() {
    let answer = TestApp::spawn().await.evaluate(r#"{"model": "m"}"#).await;
    assert_error(&answer, 422, "missing_field", Some("lists"));
}

#[tokio::test]
async fn unknown_field_is_422_unknown_field_at_that_field() {
    let app = TestApp::spawn().await;
    let answer = app.evaluate(UNKNOWN_FIELD).await;
    assert_error(&answer, 422, "unknown_field", Some("lists[0].items[0].score"));
    // A misspelt option must not silently fall back to the default.
    let misspelt = r#"{"options": {"normalisation": "sum"}, "lists": [{"items": [{"reward": 1}, {"reward": 0}]}]}"#;
    assert_error(&app.evaluate(misspelt).await, 422, "unknown_field", Some("options.normalisation"));
}

// ----- 422 list shape --------------------------------------------------------------------------

const ONE_ITEM: &str = r#"{"lists": [{"items": [{"reward": 1.0}]}]}"#;
const EMPTY_BATCH: &str = r#"{"lists": []}"#;
const MIXED_RANKING: &str = r#"{"lists": [{"items": [{"reward": 1.0, "rank": 1}, {"reward": 0.0}]}]}"#;
const ALL_ONE_RANK: &str =
    r#"{"lists": [{"items": [{"reward": 1.0, "rank": 2}, {"reward": 0.0, "rank": 2}, {"reward": 3.0, "rank": 2}]}]}"#;

#[tokio::test]
async fn list_with_fewer_than_two_items_is_422_too_few_items() {
    let app = TestApp::spawn().await;
    assert_error(&app.evaluate(ONE_ITEM).await, 422, "too_few_items", Some("lists[0].items"));
    let second_empty = r#"{"lists": [{"items": [{"reward": 1}, {"reward": 0}]}, {"items": []}]}"#;
    assert_error(&app.evaluate(second_empty).await, 422, "too_few_items", Some("lists[1].items"));
}

#[tokio::test]
async fn empty_lists_is_422_empty_batch() {
    assert_error(&TestApp::spawn().await.evaluate(EMPTY_BATCH).await, 422, "empty_batch", Some("lists"));
}

#[tokio::test]
async fn mixed_ranked_and_unranked_items_are_422_mixed_ranking() {
    let answer = TestApp::spawn().await.evaluate(MIXED_RANKING).await;
    assert_error(&answer, 422, "mixed_ranking", Some("lists[0].items[1].rank"));
}

#[tokio::test]
async fn all_items_sharing_one_rank_is_422_no_preferences() {
    assert_error(&TestApp::spawn().await.evaluate(ALL_ONE_RANK).await, 422, "no_preferences", Some("lists[0].items"));
}

// ----- 422 bad values --------------------------------------------------------------------------

fn with_rank(rank: &str) -> String {
    format!(r#"{{"lists": [{{"items": [{{"reward": 1.0, "rank": 1}}, {{"reward": 0.0, "rank": {rank}}}]}}]}}"#)
}

#[tokio::test]
async fn rank_that_is_not_a_positive_integer_is_422_at_the_rank() {
    let app = TestApp::spawn().await;
    for (rank, code) in
        [("0", "invalid_value"), ("-1", "invalid_value"), ("1.5", "invalid_value"), ("\"1\"", "invalid_type")]
    {
        let answer = app.evaluate(with_rank(rank)).await;
        assert_error(&answer, 422, code, Some("lists[0].items[1].rank"));
    }
    // 2.0 is the integer 2 (JSON Schema's `integer`): accepted.
    let answer = app.evaluate(with_rank("2.0")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer.body));
}

fn with_options(options: &str) -> String {
    format!(r#"{{"options": {options}, "lists": [{{"items": [{{"reward": 1.0}}, {{"reward": 0.0}}]}}]}}"#)
}

#[tokio::test]
async fn beta_that_is_not_positive_is_422_invalid_value() {
    let app = TestApp::spawn().await;
    for beta in ["0", "-1", "-0.0", "-1e-300"] {
        let answer = app.evaluate(with_options(&format!(r#"{{"beta": {beta}}}"#))).await;
        assert_error(&answer, 422, "invalid_value", Some("options.beta"));
    }
}

#[tokio::test]
async fn unknown_normalization_is_422_invalid_value() {
    let app = TestApp::spawn().await;
    for normalization in [r#""mean""#, r#""OrderedPairs""#, r#""""#] {
        let answer = app.evaluate(with_options(&format!(r#"{{"normalization": {normalization}}}"#))).await;
        assert_error(&answer, 422, "invalid_value", Some("options.normalization"));
    }
}

const OVERFLOWING_SPREAD: &str = r#"{"lists": [{"items": [{"reward": -1.7e308}, {"reward": 1.7e308}]}]}"#;

#[tokio::test]
async fn rewards_whose_difference_overflows_are_422_non_finite_result() {
    let app = TestApp::spawn().await;
    let answer = app.evaluate(OVERFLOWING_SPREAD).await;
    assert_eq!(answer.status, 422, "{}", String::from_utf8_lossy(&answer.body));
    let path = answer.error_path();
    assert!(
        matches!(path.as_deref(), Some("lists[0].items[0].reward" | "lists[0].items[1].reward")),
        "path {path:?} should name one of the rewards"
    );
    assert_error(&answer, 422, "non_finite_result", path.as_deref());
    // Finite rewards, but β·(r_a − r_b) overflows.
    let body =
        r#"{"options": {"beta": 1e10}, "lists": [{"items": [{"reward": 1}, {"reward": 1e300}, {"reward": -1e300}]}]}"#;
    let answer = app.evaluate(body).await;
    assert_eq!(answer.status, 422, "{}", String::from_utf8_lossy(&answer.body));
    let path = answer.error_path();
    assert!(
        matches!(path.as_deref(), Some("lists[0].items[1].reward" | "lists[0].items[2].reward")),
        "path {path:?} should name an extreme reward"
    );
    assert_error(&answer, 422, "non_finite_result", path.as_deref());
}

/// Under `sum` the loss of this list is 2 · 1.6e308 + ln 2: beyond f64, so refused.
#[tokio::test]
async fn list_loss_beyond_f64_is_422_non_finite_result() {
    let body = r#"{"options": {"normalization": "sum"},
                   "lists": [{"items": [{"reward": -8e307}, {"reward": 8e307}, {"reward": 8e307}]}]}"#;
    assert_error(&TestApp::spawn().await.evaluate(body).await, 422, "non_finite_result", Some("lists[0]"));
}

const HUGE_REWARD: &str = r#"{"lists": [{"items": [{"reward": 1e400}, {"reward": 0.0}]}]}"#;

#[tokio::test]
async fn reward_beyond_f64_is_422_number_out_of_range() {
    let app = TestApp::spawn().await;
    let answer = app.evaluate(HUGE_REWARD).await;
    assert_error(&answer, 422, "number_out_of_range", Some("lists[0].items[0].reward"));
    let negative = r#"{"lists": [{"items": [{"reward": 0.0}, {"reward": -1e400}]}]}"#;
    let answer = app.evaluate(negative).await;
    assert_error(&answer, 422, "number_out_of_range", Some("lists[0].items[1].reward"));
}

#[tokio::test]
async fn overlong_ids_are_422_invalid_value() {
    let app = TestApp::spawn().await;
    let long = "x".repeat(1025);
    let body = format!(r#"{{"lists": [{{"id": "{long}", "items": [{{"reward": 1}}, {{"reward": 0}}]}}]}}"#);
    assert_error(&app.evaluate(body).await, 422, "invalid_value", Some("lists[0].id"));
    let body = format!(r#"{{"lists": [{{"items": [{{"reward": 1}}, {{"id": "{long}", "reward": 0}}]}}]}}"#);
    assert_error(&app.evaluate(body).await, 422, "invalid_value", Some("lists[0].items[1].id"));
}

/// `unspecified` and `other` are the service's own `model` metrics labels (no model given, models
/// past the label bound): a client's model of that name would be merged into them.
#[tokio::test]
async fn models_named_like_the_reserved_metrics_labels_are_422_invalid_value() {
    let app = TestApp::spawn().await;
    for reserved in ["other", "unspecified"] {
        let body = format!(r#"{{"model": "{reserved}", "lists": [{{"items": [{{"reward": 1}}, {{"reward": 0}}]}}]}}"#);
        let answer = app.evaluate(body).await;
        assert_error(&answer, 422, "invalid_value", Some("model"));
        let text = message(&answer);
        assert!(text.contains("reserved") && text.contains("metrics"), "{reserved}: {text}");
    }
    // Only the exact names: the comparison is case-sensitive, as label values are.
    for allowed in ["Other", "others", "UNSPECIFIED", "other-rm"] {
        let body = format!(r#"{{"model": "{allowed}", "lists": [{{"items": [{{"reward": 1}}, {{"reward": 0}}]}}]}}"#);
        let answer = app.evaluate(body).await;
        assert_eq!(answer.status, StatusCode::OK, "{allowed}: {}", String::from_utf8_lossy(&answer.body));
    }
}

/// An empty model would be exported as `model=""`, which Prometheus reads as no label at all: it is
/// refused at its field through every door that takes a model.
#[tokio::test]
async fn an_empty_model_name_is_422_invalid_value_at_its_field() {
    let app = TestApp::spawn().await;
    let answer = app.evaluate(r#"{"model": "", "lists": [{"items": [{"reward": 1}, {"reward": 0}]}]}"#).await;
    assert_error(&answer, 422, "invalid_value", Some("model"));
    assert!(message(&answer).contains("empty"), "{}", message(&answer));

    let answer = app.stream("model=", "{\"items\": [{\"reward\": 1}, {\"reward\": 0}]}\n").await;
    assert_error(&answer, 422, "invalid_value", Some("model"));

    for (models, path) in [(vec!["a", ""], "models[1]"), (vec!["", "b", "c"], "models[0]")] {
        let rewards = |reward: f64| vec![reward; models.len()];
        let body = serde_json::json!({"models": models, "lists": [{"items": [{"rewards": rewards(1.0)}, {"rewards": rewards(0.0)}]}]});
        assert_error(&app.compare(body).await, 422, "invalid_value", Some(path));
    }
    let metrics = app.metrics().await;
    assert!(!metrics.text().contains(r#"model="""#), "an empty model label was exported");
}

// ----- 422 configured limits -------------------------------------------------------------------

fn list_of(n: usize) -> String {
    let items: Vec<String> = (0..n).map(|i| format!(r#"{{"reward": {}}}"#, n - i)).collect();
    format!(r#"{{"items": [{}]}}"#, items.join(", "))
}

#[tokio::test]
async fn too_many_items_is_422_naming_the_setting() {
    let app = TestApp::builder().with(|c| c.max_items_per_list = 3).build().await;
    let at_limit = format!(r#"{{"lists": [{}]}}"#, list_of(3));
    assert_eq!(app.evaluate(at_limit).await.status, StatusCode::OK);
    let answer = app.evaluate(format!(r#"{{"lists": [{}, {}]}}"#, list_of(3), list_of(4))).await;
    assert_error(&answer, 422, "too_many_items", Some("lists[1].items"));
    assert!(message(&answer).contains("PREFEVAL_MAX_ITEMS_PER_LIST"), "{}", message(&answer));
}

#[tokio::test]
async fn too_many_lists_is_422_naming_the_setting() {
    let app = TestApp::builder().with(|c| c.max_lists = 2).build().await;
    let two = format!(r#"{{"lists": [{}, {}]}}"#, list_of(2), list_of(2));
    assert_eq!(app.evaluate(two).await.status, StatusCode::OK);
    let three = format!(r#"{{"lists": [{}, {}, {}]}}"#, list_of(2), list_of(2), list_of(2));
    let answer = app.evaluate(three).await;
    assert_error(&answer, 422, "too_many_lists", Some("lists"));
    assert!(message(&answer).contains("PREFEVAL_MAX_LISTS"), "{}", message(&answer));
}

#[tokio::test]
async fn too_many_returned_pairs_is_422_naming_the_setting() {
    let app = TestApp::builder().with(|c| c.max_pairs = 5).build().await;
    // 4 items imply 6 pairs: too many to return, fine to evaluate without returning them.
    let answer = app.evaluate(format!(r#"{{"lists": [{}]}}"#, list_of(4))).await;
    assert_error(&answer, 422, "too_many_pairs", Some("options.include_pairs"));
    assert!(message(&answer).contains("PREFEVAL_MAX_PAIRS"), "{}", message(&answer));
    let without_pairs = format!(r#"{{"options": {{"include_pairs": false}}, "lists": [{}]}}"#, list_of(4));
    let answer = app.evaluate(without_pairs).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer.body));
}

#[tokio::test]
async fn too_many_evaluated_pairs_is_422_naming_the_setting() {
    let app = TestApp::builder().with(|c| c.max_evaluated_pairs = 5).build().await;
    let body = format!(r#"{{"options": {{"include_pairs": false}}, "lists": [{}, {}]}}"#, list_of(3), list_of(3));
    let answer = app.evaluate(body).await;
    assert_error(&answer, 422, "too_many_pairs", Some("lists"));
    assert!(message(&answer).contains("PREFEVAL_MAX_EVALUATED_PAIRS"), "{}", message(&answer));
}

// ----- the router survives bad requests --------------------------------------------------------

#[tokio::test]
async fn bad_requests_leave_the_router_answering_the_worked_example_exactly() {
    let app = TestApp::spawn().await;
    let bodies: [(&str, u16, &str); 18] = [
        (NOT_JSON, 400, "malformed_json"),
        (TRUNCATED, 400, "malformed_json"),
        (TRAILING_GARBAGE, 400, "malformed_json"),
        ("", 400, "malformed_json"),
        (STRING_REWARD, 422, "invalid_type"),
        (STRING_INCLUDE_PAIRS, 422, "invalid_type"),
        (NULL_BETA, 422, "invalid_type"),
        (ITEMS_AS_ARRAYS, 422, "invalid_type"),
        (MISSING_REWARD, 422, "missing_field"),
        (UNKNOWN_FIELD, 422, "unknown_field"),
        (ONE_ITEM, 422, "too_few_items"),
        (EMPTY_BATCH, 422, "empty_batch"),
        (MIXED_RANKING, 422, "mixed_ranking"),
        (ALL_ONE_RANK, 422, "no_preferences"),
        (OVERFLOWING_SPREAD, 422, "non_finite_result"),
        (HUGE_REWARD, 422, "number_out_of_range"),
        (r#"{"options": {"beta": 0}, "lists": [{"items": [{"reward": 1}, {"reward": 0}]}]}"#, 422, "invalid_value"),
        (r#"{"lists": [{"items": [{"reward": 1, "rank": 0}, {"reward": 0, "rank": 1}]}]}"#, 422, "invalid_value"),
    ];
    for (body, status, code) in bodies {
        let answer = app.evaluate(body).await;
        assert_eq!(answer.status.as_u16(), status, "{body}: {}", String::from_utf8_lossy(&answer.body));
        assert_eq!(answer.error_code(), code, "{body}");
    }
    let query = Method::from_bytes(b"QUERY").expect("valid method");
    for (bad, status) in [
        (post_with_content_type(None, VALID), 415),
        (post_with_content_type(Some("text/plain"), VALID), 415),
        (request(Method::GET, "/v1/evaluate"), 405),
        (request(query, "/v1/evaluate"), 405),
        (request(Method::GET, "/v1/missing"), 404),
    ] {
        let answer = app.send(bad).await;
        assert_eq!(answer.status.as_u16(), status, "{}", String::from_utf8_lossy(&answer.body));
    }

    let answer = app.evaluate(WORKED_EXAMPLE).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer.body));
    let json = answer.json();
    let loss = json["loss"].as_f64().expect("loss");
    assert!(close(loss, WORKED_EXAMPLE_LOSS), "worked example loss {loss:e}, expected {WORKED_EXAMPLE_LOSS:e}");
    assert_eq!(json["normalization"], "ordered_pairs");
    assert_eq!(json["summary"]["lists"], 2);
    assert_eq!(json["summary"]["pairs"], 8);
    assert_eq!(json["summary"]["accuracy"].as_f64(), Some(0.875));
    let first = &json["lists"][0];
    assert_eq!(first["id"], "prompt-0001");
    assert_eq!((first["n"].as_u64(), first["pairs_count"].as_u64()), (Some(4), Some(6)));
    // The figures api.md shows, rounded to six places there.
    let six_places = |value: &serde_json::Value, expected: f64| (value.as_f64().unwrap() - expected).abs() <= 5e-7;
    assert!(six_places(&first["loss"], 0.198299), "{}", first["loss"]);
    assert!(six_places(&first["accuracy"], 0.833333), "{}", first["accuracy"]);
    let pair = first["pairs"].as_array().unwrap().iter().find(|p| p["preferred"] == 0 && p["other"] == 1).unwrap();
    assert!(six_places(&pair["probability"], 0.785835), "{pair}");
    assert!(six_places(&pair["log_probability"], -0.241008), "{pair}");
    assert_eq!(json["lists"][1]["pairs_count"], 2);
}
