//! The floor under a virtual-time simulation: what tokio's paused clock costs per sleep
//! when nothing else runs. Each of N tasks does what a probe loop's timers do, for a
//! virtual day: a 50 ms call, a 50–250 ms call, then a 60 s period.
//!
//! `cargo run --release -p flotilla-benches --example timer_floor -- 10000`
//!
//! A `chaos` day on 10,000 clusters fires ~75 M such timers (member calls, probe periods,
//! agent waits); this program says what those cost before any of Flotilla's work.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tasks: u64 = match std::env::args().nth(1) {
        Some(s) => s.parse()?,
        None => 2_000,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    let wall = std::time::Instant::now();
    let sleeps: u64 = rt.block_on(async move {
        let handles: Vec<_> = (0..tasks)
            .map(|i| {
                tokio::spawn(async move {
                    let mut rng = SmallRng::seed_from_u64(i);
                    let end = tokio::time::Instant::now() + Duration::from_secs(86_400);
                    let mut n = 0u64;
                    tokio::time::sleep(Duration::from_millis(rng.random_range(0..60_000))).await;
                    while tokio::time::Instant::now() < end {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let jitter = rng.random_range(0..200);
                        tokio::time::sleep(Duration::from_millis(50 + jitter)).await;
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        n += 3;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for h in handles {
            total += h.await.unwrap_or(0);
        }
        total
    });
    let elapsed = wall.elapsed();
    println!(
        "{tasks} tasks, {sleeps} sleeps over a virtual day: {elapsed:.2?} wall, {:.3} µs per sleep",
        elapsed.as_secs_f64() * 1e6 / sleeps.max(1) as f64
    );
    Ok(())
}
