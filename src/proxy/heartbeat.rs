//! A timer that keeps tokio's time driver waking at least once a second, so that registering a
//! request's timers never wakes the driver through a system call.
//!
//! Why: when a timer is registered that is due before the driver's next planned wake, tokio
//! wakes the driver by writing to its eventfd (`tokio/src/runtime/time/mod.rs`, `reregister`),
//! whether the driver is parked or not. errgate arms timers on every proxied request (the wait
//! for the vendor's header at `timeouts.read`, the attempt's total deadline), and they are
//! usually due before every timer already registered (idle client connections' watchdogs at
//! `idle_timeout`), so each request paid a `write` system call and a spurious `epoll_wait`
//! return (seen with `strace`; the bare Pingora floor arms no timer and makes neither). With
//! one timer always due within [`PERIOD`], the driver's next wake is never later than that, and
//! a request's timers (seconds long) never come before it.
//!
//! Cost: one wake-up per second per worker thread, idle or not. A timeout shorter than
//! [`PERIOD`] (a route with `read: 500ms`) still wakes the driver when armed, as before.

use std::cell::Cell;
use std::time::Duration;

/// The longest the time driver sleeps.
const PERIOD: Duration = Duration::from_secs(1);

thread_local! {
    static STARTED: Cell<bool> = const { Cell::new(false) };
}

/// Starts the heartbeat on the current tokio runtime, once per worker thread (with Pingora's
/// no-steal runtimes each thread is its own runtime and driver; with one work-stealing runtime
/// the extra heartbeats are harmless). Call from inside a runtime.
pub(super) fn ensure_started() {
    if STARTED.with(|s| s.replace(true)) {
        return;
    }
    // Runs until the runtime is dropped at shutdown, which cancels it.
    tokio::spawn(async {
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
        }
    });
}
