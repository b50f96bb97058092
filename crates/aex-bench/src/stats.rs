//! Summaries of latency samples: the same quantile rule as the `ping` module's `stats`, so
//! aex and baseline figures are computed alike.
//!
//! The rule ([`quantile`]) is the nearest rank, without interpolation: quantile q of n sorted
//! samples is the sample of rank ⌈n·q⌉ (1-based, clamped to 1..=n), so every figure is a
//! time that was really measured.

/// Median, 99th percentile and extremes of a set of round-trip times, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Samples summarised.
    pub n: usize,
    /// 50th percentile.
    pub median_us: f64,
    /// 99th percentile of one run's samples ([`quantile`] 0.99); after
    /// [`Summary::median_of`], the median over the runs of each run's 99th percentile.
    pub p99_us: f64,
    /// Smallest sample.
    pub min_us: f64,
    /// Largest sample.
    pub max_us: f64,
}

impl Summary {
    /// Summarises `samples` (sorted in place) with [`quantile`].
    pub fn of(samples: &mut [f64]) -> Summary {
        samples.sort_by(f64::total_cmp);
        Summary {
            n: samples.len(),
            median_us: quantile(samples, 0.5),
            p99_us: quantile(samples, 0.99),
            min_us: samples.first().copied().unwrap_or(0.0),
            max_us: samples.last().copied().unwrap_or(0.0),
        }
    }
}

/// Quantile `q` (0 < q ≤ 1) of `sorted` (ascending): the sample of rank ⌈n·q⌉, counting
/// from 1 and clamped to 1..=n; 0 for no samples. For an even n the median is the lower
/// middle sample. The `ping` module's `stats` uses the same rule on aex's round trips.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n => sorted[((n as f64 * q).ceil() as usize).clamp(1, n) - 1],
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
    /// CPU seconds (user and system) every process of the stream's topology spent while it
    /// ran: node agents (or raw nodes) and their modules, idle ones included; 0 if unknown.
    pub cpu_s: f64,
    /// Events lost by all the runs this one stands for ([`Throughput::median_of`]); `None`
    /// for a single run.
    pub lost_in_runs: Option<u64>,
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

    /// CPU microseconds per received event (0 if unknown): what one event costs the machine,
    /// all hops together, whatever else runs on it.
    pub fn cpu_us_per_event(&self) -> f64 {
        if self.received == 0 {
            return 0.0;
        }
        self.cpu_s * 1e6 / self.received as f64
    }

    /// Events lost on the way: by this run, or by all the runs it stands for.
    pub fn lost(&self) -> u64 {
        self.lost_in_runs
            .unwrap_or_else(|| self.sent.saturating_sub(self.received))
    }

    /// Combines runs: the run of median rate (for an even number of runs, the upper middle
    /// one), its rate, CPU time and events its own, with the events lost by all runs.
    ///
    /// (Until 2026-12-04 this kept the events received by all runs beside the median run's
    /// time, so every combined rate was the number of runs times too high; ratios of two
    /// combined rates were right.)
    pub fn median_of(runs: &[Throughput]) -> Throughput {
        let mut sorted = runs.to_vec();
        sorted.sort_by(|a, b| a.events_per_s().total_cmp(&b.events_per_s()));
        let Some(mid) = sorted.get(sorted.len() / 2).copied() else {
            return Throughput::default();
        };
        Throughput {
            lost_in_runs: Some(runs.iter().map(Throughput::lost).sum()),
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
    fn quantile_of_one_sample_is_that_sample() {
        for q in [0.01, 0.5, 0.99, 1.0] {
            assert_eq!(quantile(&[7.5], q), 7.5);
        }
        let s = Summary::of(&mut [7.5]);
        assert_eq!((s.n, s.median_us, s.p99_us), (1, 7.5, 7.5));
        assert_eq!((s.min_us, s.max_us), (7.5, 7.5));
        assert_eq!(quantile(&[], 0.99), 0.0);
    }

    #[test]
    fn quantile_of_even_count_takes_a_sample_not_an_average() {
        let sorted = [1.0, 2.0, 3.0, 4.0];
        // ⌈4 · 0.5⌉ = 2: the lower middle; ⌈4 · 0.99⌉ = 4: the largest.
        assert_eq!(quantile(&sorted, 0.5), 2.0);
        assert_eq!(quantile(&sorted, 0.99), 4.0);
        assert_eq!(quantile(&[1.0, 2.0], 0.5), 1.0);
        // 1,000 samples: the 990th; 200: the 198th (n · 0.99 is a whole number, and floating
        // point must not push the rank one further).
        let thousand: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(quantile(&thousand, 0.99), 990.0);
        assert_eq!(quantile(&thousand[..200], 0.99), 198.0);
        // 3,334 (a full run's round of round trips): ⌈3,300.66⌉ = 3,301.
        let many: Vec<f64> = (1..=3334).map(f64::from).collect();
        assert_eq!(quantile(&many, 0.99), 3301.0);
    }

    #[test]
    fn summary_sorts_unsorted_input() {
        let mut samples = [5.0, 1.0, 4.0, 2.0, 3.0, 100.0, 0.5];
        let s = Summary::of(&mut samples);
        assert_eq!((s.n, s.median_us, s.p99_us), (7, 3.0, 100.0));
        assert_eq!((s.min_us, s.max_us), (0.5, 100.0));
        assert!(samples.is_sorted());
        assert!(s.p99_us >= s.median_us);
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
            cpu_s: elapsed_s / 10.0,
            lost_in_runs: None,
        };
        let m = Throughput::median_of(&[t(1.0, 100), t(3.0, 99), t(2.0, 100)]);
        // The median run's rate (99 intervals in 2 s) and CPU time, all runs' losses.
        assert_eq!((m.elapsed_s, m.received, m.lost()), (2.0, 100, 1));
        assert_eq!((m.events_per_s(), m.cpu_us_per_event()), (49.5, 2000.0));
        assert_eq!(Throughput::median_of(&[]), Throughput::default());
    }
}
