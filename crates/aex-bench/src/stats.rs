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

impl Summary {
    /// Combines runs: each figure is the median of the runs' figures (for an even number
    /// of runs, the upper middle one); `n` is the total.
    pub fn median_of(runs: &[Summary]) -> Summary {
        let mid = |f: fn(&Summary) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        };
        Summary {
            n: runs.iter().map(|r| r.n).sum(),
            median_us: mid(|r| r.median_us),
            p99_us: mid(|r| r.p99_us),
            min_us: mid(|r| r.min_us),
            max_us: mid(|r| r.max_us),
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

    /// Combines runs: the run of median rate (for an even number of runs, the upper middle
    /// one), with the events sent and lost by all runs.
    pub fn median_of(runs: &[Throughput]) -> Throughput {
        let mut sorted = runs.to_vec();
        sorted.sort_by(|a, b| a.events_per_s().total_cmp(&b.events_per_s()));
        let Some(mid) = sorted.get(sorted.len() / 2).copied() else {
            return Throughput::default();
        };
        let sent: u64 = runs.iter().map(|r| r.sent).sum();
        let lost: u64 = runs.iter().map(Throughput::lost).sum();
        Throughput {
            sent,
            received: sent - lost,
            ..mid
        }
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

    #[test]
    fn medians_of_runs() {
        let run = |m: f64| Summary {
            n: 10,
            median_us: m,
            p99_us: m * 2.0,
            min_us: 1.0,
            max_us: m * 3.0,
        };
        let s = Summary::median_of(&[run(30.0), run(10.0), run(20.0)]);
        assert_eq!((s.n, s.median_us, s.p99_us), (30, 20.0, 40.0));
        let t = |elapsed_s: f64, received: u64| Throughput {
            sent: 100,
            received,
            size: 64,
            elapsed_s,
        };
        let m = Throughput::median_of(&[t(1.0, 100), t(3.0, 99), t(2.0, 100)]);
        assert_eq!((m.elapsed_s, m.sent, m.lost()), (2.0, 300, 1));
        assert_eq!(Throughput::median_of(&[]), Throughput::default());
    }
}
