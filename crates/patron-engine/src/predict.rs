//! Predictions, simplest real form: each customer's observed purchase rate projected forward
//! (a run-rate model). It is the baseline the probabilistic models (BG/NBD, Gamma-Gamma) must
//! beat, and what a new customer falls back to.

/// A customer's order history summary, in days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct History {
    /// Number of orders.
    pub frequency: u32,
    /// Days from the first order to the reference day.
    pub tenure_days: i32,
    /// Total spend in minor units.
    pub monetary: i64,
}

/// A customer's forecast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    /// Expected orders in the next 90 days.
    pub expected_purchases_90d: f64,
    /// Expected spend in the next 365 days, minor units.
    pub clv_12m: i64,
}

/// Shortest observation window the rate is computed over: a customer seen for one day has
/// not shown a daily habit.
const MIN_TENURE_DAYS: f64 = 30.0;

/// Projects the customer's purchase rate and average order value forward.
pub fn run_rate(h: History) -> Forecast {
    if h.frequency == 0 {
        return Forecast {
            expected_purchases_90d: 0.0,
            clv_12m: 0,
        };
    }
    let per_day = f64::from(h.frequency) / f64::from(h.tenure_days).max(MIN_TENURE_DAYS);
    let average_order = h.monetary as f64 / f64::from(h.frequency);
    Forecast {
        expected_purchases_90d: per_day * 90.0,
        clv_12m: (per_day * 365.0 * average_order).round() as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::check;

    #[test]
    fn run_rate_forecasts() {
        let f = |h: &History| run_rate(*h);
        // Two orders in 180 days, 50.00 each: one order per 90 days, ~4 a year.
        check(
            f,
            History {
                frequency: 2,
                tenure_days: 180,
                monetary: 10_000,
            },
            Forecast {
                expected_purchases_90d: 1.0,
                clv_12m: 20_278,
            },
        );
        // A first order yesterday counts over the minimum window, not one day.
        check(
            f,
            History {
                frequency: 1,
                tenure_days: 1,
                monetary: 3_000,
            },
            Forecast {
                expected_purchases_90d: 3.0,
                clv_12m: 36_500,
            },
        );
        check(
            f,
            History {
                frequency: 0,
                tenure_days: 0,
                monetary: 0,
            },
            Forecast {
                expected_purchases_90d: 0.0,
                clv_12m: 0,
            },
        );
    }
}
