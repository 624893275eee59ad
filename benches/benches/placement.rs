#![allow(missing_docs)] // criterion_group! generates undocumented items.
//! Placement benchmarks (targets from the core issue, on a 2-core machine):
//! - the full matrix of 10,000 clusters × 20 addons: at most 10 ms (50 ns per decision);
//! - one cluster's re-placement after a label change: at most 20 µs.
//!
//! Run: `cargo bench -p flotilla-benches --bench placement`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flotilla_benches::{catalog20, fleet};
use flotilla_core::placement::{PlacementIndex, is_placed_plain};

fn matrix(c: &mut Criterion) {
    let catalog = catalog20();
    assert_eq!(catalog.addons().len(), 20);
    let clusters = fleet(10_000, 42, &catalog);
    let index = PlacementIndex::new(&catalog);
    let rows: Vec<_> = clusters.iter().map(|(_, l)| index.row_of(l)).collect();

    let mut g = c.benchmark_group("matrix_10k_x_20");
    g.throughput(Throughput::Elements(
        (clusters.len() * catalog.addons().len()) as u64,
    ));
    g.sample_size(30);
    g.bench_function("index_rows_ready", |b| {
        b.iter(|| {
            let mut placed = 0usize;
            for ((name, _), row) in clusters.iter().zip(&rows) {
                placed += index.place(row, name).len();
            }
            black_box(placed)
        })
    });
    g.bench_function("index_with_row_building", |b| {
        b.iter(|| {
            let mut placed = 0usize;
            for (name, labels) in &clusters {
                placed += index.place(&index.row_of(labels), name).len();
            }
            black_box(placed)
        })
    });
    g.bench_function("plain_selectors_baseline", |b| {
        b.iter(|| {
            let mut placed = 0usize;
            for (name, labels) in &clusters {
                for a in 0..catalog.addons().len() {
                    placed += usize::from(is_placed_plain(&catalog, a, name, labels));
                }
            }
            black_box(placed)
        })
    });
    g.finish();
}

fn replace_one(c: &mut Criterion) {
    let catalog = catalog20();
    let clusters = fleet(10_000, 42, &catalog);
    let index = PlacementIndex::new(&catalog);
    let (name, labels) = clusters[1234].clone();
    c.bench_function("replace_one_cluster_after_label_change", |b| {
        b.iter_batched_ref(
            || labels.clone(),
            |labels| {
                labels.insert(
                    "kommander.mesosphere.io/kubernetes-version".into(),
                    "v1.21".into(),
                );
                let row = index.row_of(labels);
                black_box(index.place(&row, &name))
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("compile_catalog_20", |b| {
        b.iter(|| black_box(PlacementIndex::new(&catalog)))
    });
}

criterion_group!(benches, matrix, replace_one);
criterion_main!(benches);
