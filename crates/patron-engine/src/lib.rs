//! Patron's analytics engine: unify, segment and recommend.
//!
//! The engine is a library of pure functions over plain data: slices of small structs and
//! integer indexes in, vectors of results out. It never does I/O, never imports a database or
//! HTTP crate, and never fails on one bad record; callers (the pipeline crate) read compact
//! snapshots from storage, call in here, and write results back in bulk. Keeping it pure is
//! what lets the same code run in tests, benchmarks and production unchanged.

pub mod clusters;
pub mod clv;
pub mod cohorts;
pub mod matching;
pub mod predict;
pub mod recommend;
pub mod rfm;
pub mod rules;
pub mod unify;

#[cfg(test)]
mod test_util;
