//! Waits that are usually over at once: the future is polled first and a timer is armed only
//! when it has to wait (a tokio timer costs a registration and a removal per wait).

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use tokio::time::{error::Elapsed, Instant};

/// `fut`, bounded by `deadline()` only if it is not ready on its first poll (the deadline is
/// computed, and the clock read, only then). The caller pins the future where it builds it
/// (`std::pin::pin!`): moved in by value, it would be copied into this one's state.
pub(super) async fn ready_or_by<F: Future>(
    deadline: impl FnOnce() -> Instant,
    mut fut: Pin<&mut F>,
) -> Result<F::Output, Elapsed> {
    if let Poll::Ready(v) = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        return Ok(v);
    }
    tokio::time::timeout_at(deadline(), fut).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_ready_future_needs_no_timer_and_a_pending_one_is_bounded() {
        let past = Instant::now() - Duration::from_secs(1);
        // Ready at once: its value, even with a deadline already passed.
        assert_eq!(ready_or_by(|| past, pin!(async { 7 })).await, Ok(7));
        // Pending: cut at the deadline.
        let deadline = Instant::now() + Duration::from_millis(50);
        assert!(ready_or_by(|| deadline, pin!(std::future::pending::<()>()))
            .await
            .is_err());
        // Pending, then ready before the deadline.
        let soon = tokio::time::sleep(Duration::from_millis(10));
        let later = Instant::now() + Duration::from_secs(1);
        let got = ready_or_by(
            || later,
            pin!(async {
                soon.await;
                3
            }),
        )
        .await;
        assert_eq!(got, Ok(3));
    }
}
