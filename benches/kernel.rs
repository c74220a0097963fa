//! The pair kernel alone: strictly ranked lists evaluated on one thread (`Sequential`), pairs not
//! returned, no JSON. Throughput is in pairs (implied preferences) per second.
//!
//! - `kernel_list/N`: one list of N items (N(N−1)/2 pairs): the O(N²) inner loop.
//! - `kernel_lists/BxN`: B lists of N items each, about the same pairs in total: the per-list
//!   overhead (planning, sorting out results, τ-b) next to little kernel work.

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use prefeval::math::{MathOptions, RankedList};
use prefeval::pipeline::{Sequential, evaluate};

#[allow(dead_code)] // only the generator: this bench sends no request bodies
mod common;
use common::{SplitMix64, gauss};

/// `count` lists of `n` rewards, best rank first, like the Python kernel bench: a decreasing
/// trend (running sum of −|N(0.3, 1)|) plus N(0, 1) noise, so the model mostly agrees.
fn lists(count: usize, n: usize, seed: u64) -> Vec<RankedList> {
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|_| {
            let mut trend = 0.0;
            let rewards = (0..n)
                .map(|_| {
                    trend -= gauss(&mut rng, 0.3, 1.0).abs();
                    trend + gauss(&mut rng, 0.0, 1.0)
                })
                .collect();
            RankedList::new(rewards, None).expect("a valid list")
        })
        .collect()
}

fn pairs_of(ranked: &[RankedList]) -> u64 {
    ranked.iter().map(RankedList::pairs).sum()
}

fn bench(group: &mut BenchmarkGroup<'_, WallTime>, id: BenchmarkId, ranked: &[RankedList]) {
    let options = MathOptions { include_pairs: false, ..MathOptions::default() };
    group.throughput(Throughput::Elements(pairs_of(ranked)));
    group.bench_with_input(id, ranked, |b, ranked| {
        b.iter(|| evaluate(black_box(ranked), &options, &Sequential));
    });
}

fn kernel(c: &mut Criterion) {
    // One evaluation of 10,000 items takes a good fraction of a second: a few flat samples.
    let mut group = c.benchmark_group("kernel_list");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for n in [1_000, 10_000] {
        bench(&mut group, BenchmarkId::from_parameter(n), &lists(1, n, 1));
    }
    group.finish();

    let mut group = c.benchmark_group("kernel_lists");
    for (count, n) in [(4096, 4), (1024, 32)] {
        bench(&mut group, BenchmarkId::from_parameter(format!("{count}x{n}")), &lists(count, n, 2));
    }
    group.finish();
}

criterion_group!(benches, kernel);
criterion_main!(benches);
