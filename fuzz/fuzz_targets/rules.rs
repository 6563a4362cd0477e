//! The segment rule language: any text either parses and evaluates, or is refused with an
//! error that points inside it; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use patron_engine::rules::{self, Column};
use std::collections::HashMap;
use std::sync::Arc;

fuzz_target!(|src: &str| {
    let table = HashMap::from([
        (
            "total_spent".to_owned(),
            Column::Number(vec![Some(1.0), None, Some(600.0)]),
        ),
        (
            "country".to_owned(),
            Column::Text(vec![Some(Arc::from("CN")), None, Some(Arc::from("US"))]),
        ),
        (
            "tags".to_owned(),
            Column::List(vec![
                vec!["vip".into()],
                vec![],
                vec!["a".into(), "b".into()],
            ]),
        ),
    ]);
    match rules::parse(src, &rules::schema(&table)) {
        Ok(rule) => assert_eq!(rules::evaluate(&rule, &table, 3).len(), 3),
        Err(e) => assert!(
            e.column >= 1 && e.column <= src.chars().count() + 1,
            "{e:?} in {src:?}"
        ),
    }
});
