//! Rate limits per API key: a token bucket per key, refilled continuously, so one key (a
//! runaway script, a leaked key) cannot monopolize the server. Over the limit a call gets
//! 429 with `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Per-key token buckets.
#[derive(Debug)]
pub struct RateLimiter {
    /// Sustained calls per minute per key; 0 turns limiting off.
    per_minute: u32,
    /// Calls a key may make at once after being idle.
    burst: u32,
    buckets: Mutex<HashMap<i64, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_minute` calls a minute per key, in bursts of up to `burst`.
    pub fn new(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            per_minute,
            burst: burst.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one call from `key`'s bucket; `Err(seconds)` says when the next one may come.
    pub fn admit(&self, key: i64) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let rate = f64::from(self.per_minute) / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = buckets.entry(key).or_insert((f64::from(self.burst), now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(f64::from(self.burst));
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let l = RateLimiter::new(60, 3);
        for _ in 0..3 {
            assert_eq!(l.admit(1), Ok(()));
        }
        assert_eq!(l.admit(1), Err(1));
        // Another key has its own bucket; 0 turns limits off.
        assert_eq!(l.admit(2), Ok(()));
        let off = RateLimiter::new(0, 1);
        assert!((0..100).all(|_| off.admit(1).is_ok()));
    }
}
