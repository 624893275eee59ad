//! The floor under a virtual-time simulation: what tokio's paused clock costs per sleep
//! when nothing else runs. Each of N tasks does what a probe loop's timers do, for a
//! virtual day: a 50 ms call, a 50–250 ms call, then a 60 s period.
//!
//! `cargo run --release -p flotilla-benches --example timer_floor -- 10000`
//!
//! A `chaos` day on 10,000 clusters fires ~36 M such timers (member calls, probe periods,
//! agent waits); this program says what those cost before any of Flotilla's work.
//!
//! With `--queue` (`-- 10000 --queue`), the two call sleeps are served by one binary heap
//! and one re-armed tokio timer instead of one tokio timer each: what an event queue under
//! the simulated members would do. On 2026-12-05 it lost, 26.1–26.3 s against 20.3–21.7 s:
//! the paused clock still stops at every distinct instant (now for the queue's one timer),
//! and each stop adds the queue task's own poll and a wake per due entry.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

struct Entry {
    at: Instant,
    seq: u64,
    waker: Waker,
}
impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

#[derive(Default)]
struct Inner {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    armed: Option<Instant>,
}

#[derive(Default)]
struct Queue {
    inner: Mutex<Inner>,
    notify: tokio::sync::Notify,
}

impl Queue {
    fn push(&self, at: Instant, waker: Waker) {
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.seq += 1;
        let seq = g.seq;
        g.heap.push(Reverse(Entry { at, seq, waker }));
        if g.armed.is_none_or(|a| at < a) {
            g.armed = Some(at);
            drop(g);
            self.notify.notify_one();
        }
    }

    async fn drive(self: Arc<Self>) {
        let sleep = tokio::time::sleep(Duration::from_secs(0));
        tokio::pin!(sleep);
        loop {
            let next = {
                let mut g = self
                    .inner
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let now = Instant::now();
                while g.heap.peek().is_some_and(|e| e.0.at <= now) {
                    if let Some(Reverse(e)) = g.heap.pop() {
                        e.waker.wake();
                    }
                }
                let next = g.heap.peek().map(|e| e.0.at);
                g.armed = next;
                next
            };
            match next {
                Some(at) => {
                    sleep.as_mut().reset(at);
                    tokio::select! {
                        () = &mut sleep => {}
                        () = self.notify.notified() => {}
                    }
                }
                None => self.notify.notified().await,
            }
        }
    }

    fn delay(&self, d: Duration) -> Delay<'_> {
        Delay {
            q: self,
            at: Instant::now() + d,
            queued: false,
        }
    }
}

struct Delay<'a> {
    q: &'a Queue,
    at: Instant,
    queued: bool,
}

impl Future for Delay<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            return Poll::Ready(());
        }
        if !self.queued {
            self.queued = true;
            self.q.push(self.at, cx.waker().clone());
        }
        Poll::Pending
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tasks: u64 = match std::env::args().nth(1) {
        Some(s) => s.parse()?,
        None => 2_000,
    };
    let queued = std::env::args().any(|a| a == "--queue");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    let wall = std::time::Instant::now();
    let sleeps: u64 = rt.block_on(async move {
        let q = Arc::new(Queue::default());
        if queued {
            tokio::spawn(q.clone().drive());
        }
        let handles: Vec<_> = (0..tasks)
            .map(|i| {
                let q = q.clone();
                tokio::spawn(async move {
                    // A simulated call's latency: on the queue, or a tokio timer of its own.
                    let call = |d: Duration| {
                        let q = &q;
                        async move {
                            if queued {
                                q.delay(d).await;
                            } else {
                                tokio::time::sleep(d).await;
                            }
                        }
                    };
                    let mut rng = SmallRng::seed_from_u64(i);
                    let end = Instant::now() + Duration::from_secs(86_400);
                    let mut n = 0u64;
                    tokio::time::sleep(Duration::from_millis(rng.random_range(0..60_000))).await;
                    while Instant::now() < end {
                        call(Duration::from_millis(50)).await;
                        let jitter = rng.random_range(0..200);
                        call(Duration::from_millis(50 + jitter)).await;
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
