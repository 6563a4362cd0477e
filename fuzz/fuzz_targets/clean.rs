//! The clean stage: any values in any import column give a record (with its field problems
//! reported) or a row error; cleaning what it produced changes nothing further.
#![no_main]

use libfuzzer_sys::fuzz_target;
use patron_domain::{
    clean_customer, clean_order_line, CleanConfig, DateOrder, RawRow, CUSTOMER_COLUMNS,
    ORDER_COLUMNS,
};

fuzz_target!(|data: &str| {
    let values: Vec<&str> = data.split('\u{1f}').collect();
    for columns in [CUSTOMER_COLUMNS, ORDER_COLUMNS] {
        let row = RawRow::new(
            columns
                .iter()
                .copied()
                .zip(values.iter().copied())
                .collect(),
        );
        let cfg = CleanConfig::default();
        if let Ok((r, _)) = clean_customer(&row, &cfg) {
            // Standardized values are a fixed point: cleaning them again keeps them.
            if let Some(e) = &r.email {
                let again = RawRow::new(vec![
                    ("source", "s"),
                    ("source_id", "1"),
                    ("email", e.as_str()),
                ]);
                let (r2, _) = clean_customer(&again, &cfg).expect("a cleaned email cleans");
                assert_eq!(r2.email.as_ref(), Some(e));
            }
        }
        // Dates read with and without the file's day/month order.
        for date_order in [None, Some(DateOrder::DayFirst), Some(DateOrder::MonthFirst)] {
            let cfg = CleanConfig {
                date_order,
                ..CleanConfig::default()
            };
            let _ = clean_order_line(&row, &cfg);
            let _ = clean_customer(&row, &cfg);
        }
    }
});
