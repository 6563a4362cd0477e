//! Opening an import file (gzip, encoding and format detection) and reading its rows as the
//! import does: any bytes open or fail with an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use patron_pipeline::collect::open_input;
use patron_pipeline::Format;
use std::io::Read;

fuzz_target!(|data: &[u8]| {
    let Ok(opened) = open_input(Box::new(std::io::Cursor::new(data.to_vec())), None) else {
        return;
    };
    match opened.format {
        Format::Csv { delimiter } => {
            let mut reader = csv::ReaderBuilder::new()
                .flexible(true)
                .delimiter(delimiter)
                .from_reader(opened.reader);
            for record in reader.byte_records().take(1000) {
                if record.is_err() {
                    break;
                }
            }
        }
        Format::JsonLines => {
            let mut text = Vec::new();
            let mut reader = opened.reader;
            let _ = reader.read_to_end(&mut text);
        }
    }
});
