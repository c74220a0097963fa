//! Decoding and validating a `POST /v1/evaluate` body into ranked lists (`validate::batch`), the
//! first stage a request runs on a worker, for each payload of the load harness. Throughput is in
//! body bytes.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use prefeval::config::Config;
use prefeval::pipeline::{Options, validate};

mod common;
use common::{payload, shape};

fn decode(c: &mut Criterion) {
    let limits = Config::default().limits();
    let mut group = c.benchmark_group("decode");
    for name in ["small", "medium", "large", "xl-list"] {
        let shape = shape(name);
        let body = payload(shape);
        let lists = validate::batch(&body, &limits, Options::default(), &Default::default())
            .expect("the payload is valid")
            .ranked
            .len();
        assert_eq!(lists, shape.lists, "{name}: every list decodes");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &body, |b, body| {
            b.iter(|| {
                validate::batch(black_box(body), &limits, Options::default(), &Default::default())
                    .expect("the payload is valid")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
