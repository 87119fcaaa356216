//! Time as the node sees it.

use std::time::Duration;

use tokio::time::Instant;

/// Time as the node sees it: elapsed since an epoch captured at start.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            epoch: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    pub fn instant(&self, at: Duration) -> Instant {
        self.epoch + at
    }
}

/// Sleeps until `at`; without a deadline, forever.
pub(crate) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
