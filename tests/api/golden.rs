//! Every case of `tests/data/golden/evaluate.json`, sent over HTTP, matches the independent
//! float64 reference to its stated tolerance.

use std::collections::BTreeMap;

use crate::helpers::{TestApp, close, test_data_dir};
use serde_json::Value;

fn number(value: &Value, what: &str) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("{what}: expected a number, got {value}"))
}

fn assert_close(got: &Value, expected: &Value, what: &str) {
    let (g, e) = (number(got, what), number(expected, what));
    assert!(close(g, e), "{what}: got {g:e}, expected {e:e} (relative error {:e})", ((g - e) / e).abs());
}

fn compare(case: &str, got: &Value, expected: &Value) {
    assert_eq!(got["normalization"], expected["normalization"], "{case}: normalization");
    assert_eq!(got["summary"]["lists"], expected["summary"]["lists"], "{case}: summary.lists");
    assert_eq!(got["summary"]["pairs"], expected["summary"]["pairs"], "{case}: summary.pairs");
    assert_close(&got["loss"], &expected["loss"], &format!("{case}: loss"));
    assert_close(&got["summary"]["accuracy"], &expected["summary"]["accuracy"], &format!("{case}: summary.accuracy"));
    let (got_lists, expected_lists) = (got["lists"].as_array().unwrap(), expected["lists"].as_array().unwrap());
    assert_eq!(got_lists.len(), expected_lists.len(), "{case}: number of lists");
    for (i, (g, e)) in got_lists.iter().zip(expected_lists).enumerate() {
        let at = format!("{case}: lists[{i}]");
        let id = |v: &Value| v.get("id").cloned().unwrap_or(Value::Null);
        assert_eq!(id(g), id(e), "{at}.id");
        assert_eq!(g["n"], e["n"], "{at}.n");
        assert_eq!(g["pairs_count"], e["pairs_count"], "{at}.pairs_count");
        assert_close(&g["loss"], &e["loss"], &format!("{at}.loss"));
        assert_close(&g["accuracy"], &e["accuracy"], &format!("{at}.accuracy"));
        match e.get("pairs") {
            None => assert!(g.get("pairs").is_none(), "{at}: pairs returned though not asked for"),
            Some(expected_pairs) => {
                let key = |p: &Value| (p["preferred"].as_u64().unwrap(), p["other"].as_u64().unwrap());
                let got_pairs: BTreeMap<_, _> = g["pairs"].as_array().unwrap().iter().map(|p| (key(p), p)).collect();
                let expected_pairs = expected_pairs.as_array().unwrap();
                assert_eq!(got_pairs.len(), g["pairs"].as_array().unwrap().len(), "{at}: a pair appears twice");
                assert_eq!(got_pairs.len(), expected_pairs.len(), "{at}: number of pairs");
                for ep in expected_pairs {
                    let gp = got_pairs.get(&key(ep)).unwrap_or_else(|| panic!("{at}: pair {:?} missing", key(ep)));
                    let pair_at = format!("{at}.pairs{:?}", key(ep));
                    assert_close(&gp["probability"], &ep["probability"], &format!("{pair_at}.probability"));
                    assert_close(&gp["log_probability"], &ep["log_probability"], &format!("{pair_at}.log_probability"));
                }
            }
        }
    }
}

#[tokio::test]
async fn every_golden_case_matches_the_reference_over_http() {
    let path = test_data_dir().join("golden/evaluate.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let golden: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(golden["tolerance"]["relative"].as_f64(), Some(1e-12));
    let cases = golden["cases"].as_array().unwrap();
    assert!(cases.len() >= 40, "expected the 40 public cases, found {}", cases.len());
    let app = TestApp::spawn().await;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let answer = app.evaluate(&case["request"]).await;
        assert_eq!(answer.status, 200, "{name}: {}", String::from_utf8_lossy(&answer.body));
        compare(name, &answer.json(), &case["response"]);
    }
}
