//! Fault injection for the memory adapters: fail the next calls (of one
//! operation or of any), or delay every call, so the services' failure
//! branches can be tested without a server.

use std::sync::Mutex;
use std::time::Duration;

/// Faults to inject into one adapter, and the calls it has seen.
#[derive(Debug, Default)]
pub struct Faults {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// (operation or any, how many more calls fail).
    failing: Vec<(Option<&'static str>, usize)>,
    delay: Duration,
    calls: Vec<&'static str>,
}

impl Faults {
    /// The next `n` calls of any operation fail.
    pub fn fail_next(&self, n: usize) {
        self.lock().failing.push((None, n));
    }

    /// The next `n` calls of `operation` (a method name, like `"put"`) fail.
    pub fn fail_next_of(&self, operation: &'static str, n: usize) {
        self.lock().failing.push((Some(operation), n));
    }

    /// Every later call waits `delay` first.
    pub fn delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// How many calls of `operation` were made.
    pub fn calls(&self, operation: &str) -> usize {
        self.lock().calls.iter().filter(|c| **c == operation).count()
    }

    /// Records a call of `operation`, waits the delay, and fails it when a
    /// fault says so (with a message naming the operation).
    pub async fn enter(&self, operation: &'static str) -> Result<(), String> {
        let (delay, fail) = {
            let mut inner = self.lock();
            inner.calls.push(operation);
            let fault = inner
                .failing
                .iter_mut()
                .find(|(op, n)| *n > 0 && op.is_none_or(|op| op == operation));
            let fail = match fault {
                Some((_, n)) => {
                    *n -= 1;
                    true
                }
                None => false,
            };
            (inner.delay, fail)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if fail {
            Err(format!("injected fault in {operation}"))
        } else {
            Ok(())
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock has failed already.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn faults_fail_the_named_calls_then_stop() {
        let faults = Faults::default();
        faults.fail_next_of("put", 2);
        assert!(faults.enter("get").await.is_ok());
        assert_eq!(faults.enter("put").await.unwrap_err(), "injected fault in put");
        assert!(faults.enter("put").await.is_err());
        assert!(faults.enter("put").await.is_ok());
        faults.fail_next(1);
        assert!(faults.enter("get").await.is_err());
        assert_eq!(faults.calls("put"), 3);
    }
}
