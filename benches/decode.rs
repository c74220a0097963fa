//! Decoding and validating a `POST /v1/evaluate` body into ranked lists (`validate::batch`), the
//! first stage a request runs on a worker, for each payload of the load harness; and one stream
//! line of a real export (`validate::line`) whose text columns are ignored
//! (`unknown_fields=ignore`), beside serde_json stepping over the same bytes unread: what skipping
//! them costs against a plain scan. Throughput is in body bytes.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use prefeval::config::Config;
use prefeval::pipeline::Options;
use prefeval::pipeline::options::{Door, OptionDef, OptionSettings};
use prefeval::pipeline::validate;
use serde::de::IgnoredAny;

mod common;
use common::{payload, shape};

fn decode(c: &mut Criterion) {
    let limits = Config::default().limits();
    let mut group = c.benchmark_group("decode");
    for name in ["small", "medium", "large", "xl-list"] {
        let shape = shape(name);
        let body = payload(shape);
        let lists = validate::batch(&body, &limits, &Options::default(), &Default::default())
            .expect("the payload is valid")
            .ranked
            .len();
        assert_eq!(lists, shape.lists, "{name}: every list decodes");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &body, |b, body| {
            b.iter(|| {
                validate::batch(black_box(body), &limits, &Options::default(), &Default::default())
                    .expect("the payload is valid")
            });
        });
    }
    group.finish();
}

/// An HH-RLHF-like conversation of about `bytes` bytes, as JSON text: escaped newlines, quotes
/// and backslashes throughout, as real text columns have them.
fn conversation(bytes: usize) -> String {
    let turn = r#"\n\nHuman: What does \"escape\" mean in C:\\path?\n\nAssistant: It means a backslash sequence, e.g. \t or \u00e9. "#;
    let mut text = String::from("\"");
    while text.len() < bytes {
        text.push_str(turn);
    }
    text.push('"');
    text
}

fn ignored_text(c: &mut Criterion) {
    let limits = Config::default().limits();
    let mut settings = OptionSettings::default();
    for (name, text) in [
        ("format", "pairs"),
        ("fields", "chosen_reward:score_chosen,rejected_reward:score_rejected,id:prompt_id"),
        ("unknown_fields", "ignore"),
    ] {
        let def = OptionDef::find(Door::Stream, name).expect("a stream option");
        settings.push(def, def.parse_text(text, name).expect("a valid value"));
    }
    let options = settings.resolve(Options::default(), "").expect("valid options");
    let (chosen, rejected) = (conversation(50_000), conversation(50_000));
    let line = format!(
        r#"{{"prompt_id":123,"chosen":{chosen},"rejected":{rejected},"score_chosen":1.25,"score_rejected":-0.5}}"#
    )
    .into_bytes();
    validate::line(&line, &options, &limits).expect("the line is valid");
    let mut group = c.benchmark_group("decode-ignored");
    group.throughput(Throughput::Bytes(line.len() as u64));
    group.bench_function("hh-line", |b| {
        b.iter(|| validate::line(black_box(&line), &options, &limits).expect("the line is valid"));
    });
    group.bench_function("serde-skip", |b| {
        b.iter(|| serde_json::from_slice::<IgnoredAny>(black_box(&line)).expect("valid JSON"));
    });
    group.finish();
}

criterion_group!(benches, decode, ignored_text);
criterion_main!(benches);
