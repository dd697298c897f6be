//! Where a request to stop comes from: SIGINT (Ctrl-C), SIGTERM or SIGHUP to this
//! process, all treated alike, counted so a second one can abort a cleanup.
//! Long-running commands (`up`, `verify`) race their steps against [`Interrupt::wait`].

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;

/// Where an interruption comes from.
#[derive(Debug, Clone, Default)]
pub enum Interrupt {
    /// SIGINT, SIGTERM or SIGHUP to this process.
    #[default]
    Signals,
    /// As if a signal came after this long (tests); a second never comes.
    After(Duration),
    /// Never.
    Never,
}

/// What the listener saw: how many signals, and the last one's number.
struct Delivered {
    count: watch::Sender<usize>,
    last: AtomicI32,
}

static DELIVERED: OnceLock<Option<Arc<Delivered>>> = OnceLock::new();

/// Starts listening (once per process) on a thread of its own, so the listener
/// outlives any one async runtime. From then on these signals no longer end the
/// process: the command decides, after cleaning up.
fn listener() -> Option<&'static Delivered> {
    DELIVERED
        .get_or_init(|| {
            let (count, _) = watch::channel(0usize);
            let delivered = Arc::new(Delivered {
                count,
                last: AtomicI32::new(0),
            });
            let (ready_tx, ready_rx) = std::sync::mpsc::channel::<bool>();
            let shared = Arc::clone(&delivered);
            std::thread::Builder::new()
                .name("devcluster-signals".into())
                .spawn(move || listen(&shared, ready_tx))
                .ok()?;
            // Signals are registered before the first step starts.
            ready_rx.recv().ok().filter(|ok| *ok)?;
            Some(delivered)
        })
        .as_deref()
}

fn listen(delivered: &Delivered, ready: std::sync::mpsc::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        let _ = ready.send(false);
        return;
    };
    runtime.block_on(async move {
        let streams = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        );
        let (Ok(mut interrupt), Ok(mut terminate), Ok(mut hangup)) = streams else {
            let _ = ready.send(false);
            return;
        };
        let _ = ready.send(true);
        loop {
            let number = tokio::select! {
                _ = interrupt.recv() => 2,
                _ = terminate.recv() => 15,
                _ = hangup.recv() => 1,
            };
            delivered.last.store(number, Ordering::SeqCst);
            delivered.count.send_modify(|n| *n += 1);
        }
    });
}

/// A signal's name as people know it.
pub fn signal_name(number: i32) -> &'static str {
    match number {
        1 => "SIGHUP",
        2 => "Ctrl-C (SIGINT)",
        15 => "SIGTERM",
        _ => "a signal",
    }
}

impl Interrupt {
    /// Starts listening now, so a signal that comes before the first `wait` still
    /// counts. Idempotent.
    pub fn arm(&self) {
        if matches!(self, Interrupt::Signals) {
            let _ = listener();
        }
    }

    /// Resolves once the first interruption has come (at once if it already has),
    /// with what it was.
    pub async fn wait(&self) -> &'static str {
        self.wait_for(1).await
    }

    /// Resolves once a second interruption has come: the user insists.
    pub async fn wait_again(&self) -> &'static str {
        self.wait_for(2).await
    }

    async fn wait_for(&self, count: usize) -> &'static str {
        match self {
            Interrupt::Signals => {
                let Some(delivered) = listener() else {
                    return std::future::pending().await;
                };
                let mut receiver = delivered.count.subscribe();
                if receiver.wait_for(|n| *n >= count).await.is_err() {
                    return std::future::pending().await;
                }
                signal_name(delivered.last.load(Ordering::SeqCst))
            }
            Interrupt::After(delay) if count == 1 => {
                tokio::time::sleep(*delay).await;
                "an interruption (test)"
            }
            Interrupt::After(_) | Interrupt::Never => std::future::pending().await,
        }
    }

    /// A future that resolves at the next interruption after this call, not at one
    /// already counted: for a caller that asks again after handling the first.
    pub fn next(&self) -> impl std::future::Future<Output = &'static str> + Send + 'static {
        let this = self.clone();
        let seen = match self {
            Interrupt::Signals => listener().map_or(0, |d| *d.count.borrow()),
            _ => 0,
        };
        async move { this.wait_for(seen + 1).await }
    }

    /// Whether an interruption has already come.
    pub fn happened(&self) -> bool {
        match self {
            Interrupt::Signals => listener().is_some_and(|d| *d.count.borrow() > 0),
            _ => false,
        }
    }
}
