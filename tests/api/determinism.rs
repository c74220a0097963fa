//! The same request gives the same bits whatever the number of workers and whether pairs are
//! returned: work is split by a plan that depends only on the lists.

use crate::helpers::TestApp;
use serde_json::{Value, json};

fn big_batch(include_pairs: bool) -> Value {
    // One list large enough to be split into many units, plus small ones, with ties in rank.
    let big: Vec<Value> =
        (0..1200).map(|i| json!({"reward": (f64::from(i) * 0.618).sin() * 3.0, "rank": 1 + i / 3})).collect();
    let small: Vec<Value> = (0..20)
        .map(|k| json!({"items": (0..6).map(|i| json!({"reward": f64::from(i * k).cos()})).collect::<Vec<_>>()}))
        .collect();
    let mut lists = vec![json!({"items": big})];
    lists.extend(small);
    json!({"options": {"include_pairs": include_pairs, "normalization": "comparisons"}, "lists": lists})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_bit_identical_for_any_worker_count() {
    let mut bodies = Vec::new();
    for workers in [1, 2, 3] {
        let app = TestApp::builder().workers(workers).build().await;
        let answer = app.evaluate(&big_batch(false)).await;
        assert_eq!(answer.status, 200);
        bodies.push(answer.body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "responses differ between worker counts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returning_pairs_does_not_change_a_single_bit_of_the_figures() {
    let app = TestApp::spawn().await;
    let without = app.evaluate(&big_batch(false)).await.json();
    let answer = app.evaluate(&big_batch(true)).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)]));
    let mut with = answer.json();
    assert!(with["lists"][0]["pairs"].as_array().is_some_and(|p| !p.is_empty()));
    for list in with["lists"].as_array_mut().unwrap() {
        list.as_object_mut().unwrap().remove("pairs");
    }
    assert_eq!(with, without);
}
