//! Every port in memory, for tests: each adapter keeps its data in a mutex,
//! behaves as its AWS twin does (the contract suites check that), and carries
//! [`Faults`] to fail or delay its calls.

mod alert_log;
mod device_state;
mod directory;
mod faults;
mod keys;
mod ledger;
mod live;
mod messaging;
mod queue;
mod quota;
mod state;
mod store;

pub use alert_log::MemoryAlertLog;
pub use device_state::MemoryDeviceStateTable;
pub use directory::MemoryDirectory;
pub use faults::Faults;
pub use keys::MemoryKeyStore;
pub use ledger::MemoryLedger;
pub use live::{MemoryConnectionStore, MemoryPoster, MemoryTokenVerifier};
pub use messaging::{MemoryDevicePublisher, MemoryNotifier, Notification};
pub use queue::MemoryQueue;
pub use quota::MemoryQuotaCounter;
pub use state::MemoryStateTable;
pub use store::MemoryStore;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// A poisoned lock means a test panicked already; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
