//! Summaries of latency samples: the same quantile rule as the `ping` module's `stats`, so
//! aex and baseline figures are computed alike.

/// Median, 99th percentile and extremes of a set of round-trip times, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Samples summarised.
    pub n: usize,
    /// 50th percentile.
    pub median_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Smallest sample.
    pub min_us: f64,
    /// Largest sample.
    pub max_us: f64,
}

impl Summary {
    /// Summarises `samples` (sorted in place). Quantile q is the sample of rank ⌈n·q⌉.
    pub fn of(samples: &mut [f64]) -> Summary {
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let at = |q: f64| match n {
            0 => 0.0,
            n => samples[((n as f64 * q).ceil() as usize).clamp(1, n) - 1],
        };
        Summary {
            n,
            median_us: at(0.5),
            p99_us: at(0.99),
            min_us: samples.first().copied().unwrap_or(0.0),
            max_us: samples.last().copied().unwrap_or(0.0),
        }
    }
}

/// A one-way stream as the receiving end saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Throughput {
    /// Events sent.
    pub sent: u64,
    /// Events received.
    pub received: u64,
    /// Payload bytes per event.
    pub size: usize,
    /// Seconds from the first to the last event received.
    pub elapsed_s: f64,
}

impl Throughput {
    /// Events per second: the intervals between received events over their time.
    pub fn events_per_s(&self) -> f64 {
        if self.received < 2 || self.elapsed_s <= 0.0 {
            return 0.0;
        }
        (self.received - 1) as f64 / self.elapsed_s
    }

    /// Payload megabytes (10^6 bytes) per second.
    pub fn mb_per_s(&self) -> f64 {
        self.events_per_s() * self.size as f64 / 1e6
    }

    /// Events lost on the way.
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let mut s: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let sum = Summary::of(&mut s);
        assert_eq!((sum.n, sum.median_us, sum.p99_us), (100, 50.0, 99.0));
        assert_eq!((sum.min_us, sum.max_us), (1.0, 100.0));
        assert_eq!(Summary::of(&mut []), Summary::default());
    }
}
