//! What asks a running operation to stop. Operations race their steps against
//! [`Interrupt::wait`] and let their cleanup run unless [`Interrupt::wait_again`]
//! resolves too: one request stops the work, a second abandons the cleanup. Where
//! the requests come from is the caller's business (the command line hands in the
//! process's signals); an operation never installs a signal handler.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

type Source = dyn Fn(usize) -> BoxFuture<'static, &'static str> + Send + Sync;

/// A source of interruptions, cheap to clone.
#[derive(Clone)]
pub struct Interrupt(Arc<Source>);

impl Interrupt {
    /// Interruptions as `source` delivers them: `source(n)` resolves once the `n`th
    /// interruption (counting from 1) has come, at once if it already has, with a
    /// description of it such as `Ctrl-C (SIGINT)`.
    pub fn from_fn<F, Fut>(source: F) -> Interrupt
    where
        F: Fn(usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = &'static str> + Send + 'static,
    {
        Interrupt(Arc::new(move |n| Box::pin(source(n))))
    }

    /// Never interrupts.
    pub fn never() -> Interrupt {
        Interrupt::from_fn(|_| std::future::pending())
    }

    /// As if one interruption came `delay` after each wait for the first (tests); a
    /// second never comes.
    pub fn after(delay: Duration) -> Interrupt {
        Interrupt::from_fn(move |n| async move {
            if n == 1 {
                tokio::time::sleep(delay).await;
                "an interruption (test)"
            } else {
                std::future::pending().await
            }
        })
    }

    /// Resolves once the first interruption has come, with what it was.
    pub fn wait(&self) -> BoxFuture<'static, &'static str> {
        (self.0)(1)
    }

    /// Resolves once a second interruption has come: the user insists.
    pub fn wait_again(&self) -> BoxFuture<'static, &'static str> {
        (self.0)(2)
    }
}

impl Default for Interrupt {
    fn default() -> Interrupt {
        Interrupt::never()
    }
}

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Interrupt")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn after_interrupts_once_and_never_again() {
        let interrupt = Interrupt::after(Duration::from_millis(10));
        assert_eq!(interrupt.wait().await, "an interruption (test)");
        let again = tokio::time::timeout(Duration::from_millis(50), interrupt.wait_again()).await;
        assert!(again.is_err(), "a second interruption came");
    }

    #[tokio::test]
    async fn never_does_not_interrupt() {
        let first =
            tokio::time::timeout(Duration::from_millis(20), Interrupt::never().wait()).await;
        assert!(first.is_err());
    }
}
