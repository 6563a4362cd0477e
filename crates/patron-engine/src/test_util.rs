//! The data-driven `check` helper the engine's tests share: a case is one line of input and
//! the expected output, and a failure prints both.

use std::fmt::Debug;

/// Runs `f` on `input` and asserts it returns `expected`.
pub fn check<I: Debug, O: Debug + PartialEq>(f: impl Fn(&I) -> O, input: I, expected: O) {
    let got = f(&input);
    assert_eq!(got, expected, "input: {input:?}");
}
