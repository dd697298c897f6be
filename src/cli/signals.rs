//! The process's signals: SIGINT (Ctrl-C), SIGTERM and SIGHUP, all treated alike,
//! counted so a second one can abort a cleanup, and handed to the long-running
//! operations (`up`, `verify`) as their [`Interrupt`].

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::watch;

use crate::operations::interrupt::Interrupt;

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

/// The process's SIGINT, SIGTERM and SIGHUP as an [`Interrupt`]. The listener
/// starts now (once per process), so a signal that comes before the operation's
/// first wait still counts; from then on these signals no longer end the process:
/// the operation stops, cleans up, and the command decides the exit code.
pub fn interrupt() -> Interrupt {
    let Some(delivered) = listener() else {
        return Interrupt::never();
    };
    Interrupt::from_fn(move |count| {
        let mut receiver = delivered.count.subscribe();
        async move {
            if receiver.wait_for(|n| *n >= count).await.is_err() {
                return std::future::pending().await;
            }
            signal_name(delivered.last.load(Ordering::SeqCst))
        }
    })
}
