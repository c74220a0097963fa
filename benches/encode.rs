//! Encoding a batch answer (`encode::write_batch` into a `Vec`, sized once as the server sizes
//! it) from evaluations computed once, outside the timed loop: medium (64 × 8, pairs returned)
//! and large (256 × 32, no pairs). Throughput is in answer bytes. The server writes into a
//! buffer that reserves from its memory budget as it grows; that type is internal, so this
//! measures the encoder alone.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use prefeval::config::Config;
use prefeval::math::Totals;
use prefeval::pipeline::encode::{BatchExtras, encoded_size_estimate, write_batch};
use prefeval::pipeline::run::Run;
use prefeval::pipeline::{Options, Sequential, evaluate, validate};

mod common;
use common::{payload, shape};

fn encode(c: &mut Criterion) {
    let limits = Config::default().limits();
    let mut group = c.benchmark_group("encode");
    for name in ["medium", "large"] {
        let body = payload(shape(name));
        let batch =
            validate::batch(&body, &limits, &Options::default(), &Default::default()).expect("the payload is valid");
        let evaluations: Vec<_> = evaluate(&batch.ranked, &batch.options.math, &Sequential)
            .into_iter()
            .map(|evaluation| evaluation.expect("the loss is finite"))
            .collect();
        let mut totals = Totals::default();
        evaluations.iter().for_each(|evaluation| totals.add(evaluation));
        let extras = BatchExtras::default();
        let run = Run::new(&batch.options, None);
        let write = || {
            let mut out = Vec::with_capacity(encoded_size_estimate(&evaluations));
            write_batch(&mut out, &batch.options, &batch.inputs, black_box(&evaluations), &totals, &extras, &run)
                .expect("the answer encodes");
            out
        };
        group.throughput(Throughput::Bytes(write().len() as u64));
        group.bench_function(BenchmarkId::from_parameter(name), |b| b.iter(write));
    }
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
