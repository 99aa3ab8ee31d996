//! Running statistics computed the way Apache Commons Math `SummaryStatistics`
//! does (CICFlowMeter uses it), so means and deviations match the reference to the
//! last digit: Welford updates of the mean and second moment, sample variance.

/// Count, sum, min, max, mean and second central moment of a stream of values,
/// in constant space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunningStats {
    n: u64,
    sum: f64,
    min: f64,
    max: f64,
    mean: f64,
    m2: f64,
}

impl Default for RunningStats {
    fn default() -> Self {
        RunningStats {
            n: 0,
            sum: 0.0,
            min: f64::NAN,
            max: f64::NAN,
            mean: f64::NAN,
            m2: f64::NAN,
        }
    }
}

impl RunningStats {
    pub fn push(&mut self, x: f64) {
        if self.n == 0 {
            self.min = x;
            self.max = x;
            self.mean = 0.0;
            self.m2 = 0.0;
        } else {
            if x < self.min {
                self.min = x;
            }
            if x > self.max {
                self.max = x;
            }
        }
        self.n += 1;
        self.sum += x;
        // Commons Math FirstMoment/SecondMoment update order.
        let n = self.n as f64;
        let dev = x - self.mean;
        let n_dev = dev / n;
        self.mean += n_dev;
        self.m2 += (n - 1.0) * dev * n_dev;
    }

    pub fn count(&self) -> u64 {
        self.n
    }
    pub fn sum(&self) -> f64 {
        self.sum
    }
    /// NaN when empty (as Commons Math).
    pub fn min(&self) -> f64 {
        self.min
    }
    pub fn max(&self) -> f64 {
        self.max
    }
    pub fn mean(&self) -> f64 {
        self.mean
    }
    /// Sample variance: NaN when empty, 0 for one value.
    pub fn variance(&self) -> f64 {
        match self.n {
            0 => f64::NAN,
            1 => 0.0,
            n => self.m2 / (n as f64 - 1.0),
        }
    }
    /// Sample standard deviation: NaN when empty, 0 for one value.
    pub fn std(&self) -> f64 {
        match self.n {
            0 => f64::NAN,
            1 => 0.0,
            _ => self.variance().sqrt(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_two_pass_sample_statistics() {
        let xs = [40.0, 0.0, 0.0, 32.0, 17.5, 1460.0, 0.0];
        let mut s = RunningStats::default();
        xs.iter().for_each(|&x| s.push(x));
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        assert_eq!(s.count(), 7);
        assert!((s.mean() - mean).abs() < 1e-9);
        assert!((s.variance() - var).abs() < 1e-6);
        assert_eq!(s.min(), 0.0);
        assert_eq!(s.max(), 1460.0);
        assert_eq!(s.sum(), xs.iter().sum::<f64>());
    }

    #[test]
    fn empty_is_nan_and_single_value_has_zero_spread() {
        let mut s = RunningStats::default();
        assert!(s.mean().is_nan() && s.std().is_nan() && s.max().is_nan());
        s.push(5.0);
        assert_eq!(s.std(), 0.0);
        assert_eq!(s.variance(), 0.0);
        assert_eq!(s.mean(), 5.0);
    }
}
