//! Patron's one integration-test binary: the real `patron` executable, a real SQLite file, a
//! real PostgreSQL server (`PATRON_TEST_DATABASE_URL`, a fresh database per test) and a real
//! HTTPS server on a free port.

mod api;
mod browser;
mod cli;
mod clv;
mod corrections;
mod dashboard;
mod helpers;
mod online;
mod protect;
mod recommend;
mod segment;
mod segments;
mod unify;
