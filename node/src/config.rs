//! The node's limits and timers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub listen: SocketAddr,
    pub max_connections: usize,
    pub max_per_ip: usize,
    pub connect_timeout: Duration,
    pub reply_timeout: Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// A message still queued after this long (the sum of its backoffs) is
    /// bounced.
    pub max_queue_age: Duration,
    /// The first wait after `accept` failed for want of resources
    /// (descriptors, buffers, memory); it doubles up to `accept_backoff_max`.
    pub accept_backoff_base: Duration,
    pub accept_backoff_max: Duration,
    /// Delivery rounds under way at once; each holds one message's body,
    /// read back from the spool (and, while it goes to a remote exchanger,
    /// two more copies: the dot-stuffed data and the write under way), so
    /// this bounds what queued, deferred and recovered messages cost in
    /// memory: about three times this many largest messages.
    pub max_deliveries: usize,
    /// A message body up to this many octets is held in memory until its
    /// end instead of written into the spool as it arrives: it is then
    /// stored in one write, and when every recipient is local it goes
    /// straight into the mailboxes before the reply, with no queue file
    /// (one file written instead of two, none removed). 0 streams every
    /// body. It bounds memory at this much per connection.
    pub held_body_max: usize,
    /// The server side of STARTTLS: offered to clients when set. Built by
    /// whoever starts the node (`serve` from the `[tls]` files, the
    /// simulation with its seeded provider; see [`crate::tls`]), never by
    /// the node itself.
    pub tls_server: Option<Arc<rustls::ServerConfig>>,
    /// The client side, for outbound deliveries to exchangers that offer
    /// STARTTLS; `None` delivers in plain text.
    pub tls_client: Option<Arc<rustls::ClientConfig>>,
}

impl NodeConfig {
    pub fn new(listen: SocketAddr) -> NodeConfig {
        NodeConfig {
            listen,
            max_connections: 100,
            max_per_ip: 10,
            connect_timeout: Duration::from_secs(30),
            reply_timeout: Duration::from_secs(300),
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            max_queue_age: Duration::from_secs(5 * 24 * 3600),
            accept_backoff_base: Duration::from_millis(10),
            accept_backoff_max: Duration::from_secs(1),
            max_deliveries: 4,
            held_body_max: 64 * 1024,
            tls_server: None,
            tls_client: None,
        }
    }

    /// The wait after `attempts` failed rounds: base·2^(n-1), capped.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(20);
        self.retry_base.saturating_mul(1 << exp).min(self.retry_max)
    }

    /// How long a message has been queued after `attempts` rounds.
    pub fn age(&self, attempts: u32) -> Duration {
        (1..=attempts).map(|a| self.backoff(a)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let mut c = NodeConfig::new("127.0.0.1:25".parse().unwrap());
        c.retry_base = Duration::from_secs(1);
        c.retry_max = Duration::from_secs(8);
        let b: Vec<u64> = (1..=6).map(|a| c.backoff(a).as_secs()).collect();
        assert_eq!(b, [1, 2, 4, 8, 8, 8]);
        assert_eq!(c.age(3), Duration::from_secs(7));
    }
}
