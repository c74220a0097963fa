//! One whole request in process, as the tests drive the service: the real router with all its
//! middleware and a worker pool of the default size, `POST /v1/evaluate` sent with `oneshot` and
//! the whole answer read back, for the small and medium payloads; `GET /healthz` through the same
//! router gives the fixed cost of a request, to compare with.

use std::hint::black_box;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use prefeval::config::Config;
use prefeval::{AppState, app};
use tower::ServiceExt;

mod common;
use common::{payload, shape};

/// Sends the request and reads the whole answer; its status and body.
async fn send(router: &Router, request: Request<Body>) -> (StatusCode, Bytes) {
    let response = router.clone().oneshot(request).await.expect("the router is infallible");
    let status = response.status();
    let body = response.into_body().collect().await.expect("the body reads").to_bytes();
    (status, body)
}

fn evaluate_request(body: &Bytes) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri("/v1/evaluate")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.clone()))
        .expect("the request builds")
}

fn healthz_request() -> Request<Body> {
    Request::builder().uri("/healthz").body(Body::empty()).expect("the request builds")
}

fn request(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let router = app(AppState::new(&Config::default()).expect("the worker pool starts"));
    let mut group = c.benchmark_group("request");
    for name in ["small", "medium"] {
        let body = Bytes::from(payload(shape(name)));
        let (status, answer) = runtime.block_on(send(&router, evaluate_request(&body)));
        assert_eq!(status, StatusCode::OK, "{name}: {}", String::from_utf8_lossy(&answer));
        group.bench_function(BenchmarkId::new("evaluate", name), |b| {
            b.iter(|| runtime.block_on(send(&router, evaluate_request(black_box(&body)))));
        });
    }
    let (status, _) = runtime.block_on(send(&router, healthz_request()));
    assert_eq!(status, StatusCode::OK, "GET /healthz answers");
    group.bench_function("healthz", |b| b.iter(|| runtime.block_on(send(&router, healthz_request()))));
    group.finish();
}

criterion_group!(benches, request);
criterion_main!(benches);
