//! Acquisition cohorts: customers grouped by the month of their first order, and for each
//! month since, how many of them ordered and what they spent.

use std::collections::BTreeMap;

/// One cohort's activity in one month after its first.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CohortCell {
    /// The cohort: the month of the first order, `YYYY-MM`.
    pub cohort: String,
    /// Months since that month (0 is the month of the first order).
    pub month: u32,
    /// Customers in the cohort.
    pub size: u64,
    /// Of them, customers with an order in this month.
    pub active: u64,
    /// `active / size`.
    pub retention: f64,
    /// What the cohort spent in this month, minor units.
    pub revenue: i64,
}

/// A month as a count of months since year 0, from a day number (days since 1970-01-01).
fn month_of(day: i32) -> i32 {
    let date = chrono::DateTime::from_timestamp(i64::from(day) * 86_400, 0)
        .map(|d| d.date_naive())
        .unwrap_or_default();
    use chrono::Datelike;
    date.year() * 12 + date.month0() as i32
}

/// Cohort cells for `orders` (customer index, day, amount), every month from each cohort's
/// first up to the last month with any order, cohorts and months in order.
pub fn cohorts(orders: &[crate::rfm::Order]) -> Vec<CohortCell> {
    let mut first: BTreeMap<u32, i32> = BTreeMap::new();
    for o in orders {
        let m = month_of(o.day);
        first
            .entry(o.customer)
            .and_modify(|f| *f = (*f).min(m))
            .or_insert(m);
    }
    let Some(last) = orders.iter().map(|o| month_of(o.day)).max() else {
        return Vec::new();
    };
    let mut size: BTreeMap<i32, u64> = BTreeMap::new();
    for m in first.values() {
        *size.entry(*m).or_default() += 1;
    }
    // (cohort, month offset) -> (active customers, revenue)
    let mut active: BTreeMap<(i32, u32), (std::collections::HashSet<u32>, i64)> = BTreeMap::new();
    for o in orders {
        let c = first[&o.customer];
        let offset = (month_of(o.day) - c) as u32;
        let cell = active.entry((c, offset)).or_default();
        cell.0.insert(o.customer);
        cell.1 = cell.1.saturating_add(o.amount);
    }
    let mut out = Vec::new();
    for (&cohort, &n) in &size {
        for offset in 0..=(last - cohort) as u32 {
            let (customers, revenue) = active
                .get(&(cohort, offset))
                .map_or((0, 0), |(s, r)| (s.len() as u64, *r));
            out.push(CohortCell {
                cohort: format!("{:04}-{:02}", cohort / 12, cohort % 12 + 1),
                month: offset,
                size: n,
                active: customers,
                retention: customers as f64 / n as f64,
                revenue,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rfm::Order;

    #[test]
    fn cohorts_count_returning_customers_per_month() {
        let day = |y: i32, m: u32, d: u32| {
            (chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap()
                - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
            .num_days() as i32
        };
        let o = |customer, day, amount| Order {
            customer,
            day,
            amount,
        };
        // Customers 0 and 1 start in January; 0 returns in March. Customer 2 starts in
        // February.
        let orders = [
            o(0, day(2024, 1, 5), 100),
            o(1, day(2024, 1, 20), 50),
            o(0, day(2024, 3, 2), 70),
            o(2, day(2024, 2, 10), 30),
            o(0, day(2024, 3, 9), 5),
        ];
        let cells = cohorts(&orders);
        let got: Vec<(&str, u32, u64, u64, i64)> = cells
            .iter()
            .map(|c| (c.cohort.as_str(), c.month, c.size, c.active, c.revenue))
            .collect();
        assert_eq!(
            got,
            vec![
                ("2024-01", 0, 2, 2, 150),
                ("2024-01", 1, 2, 0, 0),
                ("2024-01", 2, 2, 1, 75),
                ("2024-02", 0, 1, 1, 30),
                ("2024-02", 1, 1, 0, 0),
            ]
        );
        assert_eq!(cells[2].retention, 0.5);
        assert!(cohorts(&[]).is_empty());
    }
}
