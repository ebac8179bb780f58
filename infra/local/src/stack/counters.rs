//! What the local stack counts: invocations and their time per function,
//! messages and their IoT units, what is in flight; and the faults a test injects.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Faults a test injects into the functions' invocations.
#[derive(Default, Debug)]
pub struct InvocationFaults {
    /// Invocations still to kill, and how long each runs before it is.
    pub(super) kill: std::sync::Mutex<(u32, Duration)>,
}

impl InvocationFaults {
    /// Kills the next `count` queue invocations still running `after` they
    /// start, as a Lambda runtime dies mid-batch (a timeout, out of memory):
    /// whatever the handler did by then stays done, nothing of the batch is
    /// deleted, and every record comes back after the visibility timeout.
    pub fn kill_next(&self, count: u32, after: Duration) {
        *self.kill.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = (count, after);
    }

    /// How long the next invocation may run, when it is to be killed.
    pub(super) fn deadline(&self) -> Option<Duration> {
        let kill = self.kill.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (kill.0 > 0).then_some(kill.1)
    }

    pub(super) fn killed(&self) {
        let mut kill = self.kill.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        kill.0 = kill.0.saturating_sub(1);
    }
}

/// What the stack has done, for summaries, tests and `make cost`.
#[derive(Default, Debug)]
pub struct StackCounters {
    pub mqtt_messages: AtomicU64,
    /// Of them, sent through the broker (billed as messaging), in IoT Core's 5 KB units.
    pub broker_units: AtomicU64,
    /// Of them, sent by Basic Ingest (not billed as messaging).
    pub basic_ingest_messages: AtomicU64,
    /// Rules whose topic filter a message matched, in 5 KB units (IoT Core bills each).
    pub rules_triggered_units: AtomicU64,
    /// Rule actions run, in 5 KB units.
    pub rule_action_units: AtomicU64,
    pub rule_matches: AtomicU64,
    pub invocations: AtomicU64,
    pub failed_invocations: AtomicU64,
    /// Invocations [`InvocationFaults`] killed mid-batch.
    pub killed_invocations: AtomicU64,
    pub records_retried: AtomicU64,
    /// Asynchronous invocations (the rules' Lambda actions) started and not
    /// yet done, retries included: pending work, as queued messages are.
    pub async_in_flight: AtomicU64,
    /// Invocations and their durations, by function (logical id).
    pub functions: std::sync::Mutex<BTreeMap<String, FunctionUse>>,
}

/// A function's invocations and their billed time (each rounded up to 1 ms, as Lambda bills).
#[derive(Default, Debug, Clone, Copy, PartialEq)]
pub struct FunctionUse {
    pub invocations: u64,
    pub billed_ms: u64,
}

impl StackCounters {
    pub fn invoked(&self, function: &str, took: Duration) {
        if let Ok(mut functions) = self.functions.lock() {
            let f = functions.entry(function.to_string()).or_default();
            f.invocations += 1;
            f.billed_ms += took.as_nanos().div_ceil(1_000_000) as u64;
        }
    }
}

/// IoT Core meters messages, rules and actions in 5 KB units.
pub fn iot_units(payload_bytes: usize) -> u64 {
    payload_bytes.div_ceil(5 * 1024).max(1) as u64
}
