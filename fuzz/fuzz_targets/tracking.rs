//! The tracking API's payloads (Segment spec: identify, track, page, alias, batch): any
//! body is interpreted or refused with a reason, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = patron_server::interpret_tracking(data);
});
