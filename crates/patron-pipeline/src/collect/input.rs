//! Opening an input file whatever its packaging: gzip or not, UTF-8 or a legacy encoding
//! (GB18030 is common in Chinese exports), CSV with any usual delimiter or JSON Lines. The
//! result is one UTF-8 byte stream and the detected format.

use anyhow::{bail, Context};
use encoding_rs::Encoding;
use std::io::{Cursor, Read};

/// The layout of the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Delimited text with a header row.
    Csv {
        /// The field delimiter.
        delimiter: u8,
    },
    /// One JSON object per line.
    JsonLines,
}

/// An opened input: a UTF-8 stream (except for bytes invalid in UTF-8 input itself, which are
/// reported per row) and what was detected about it.
pub struct Opened {
    /// The decoded stream.
    pub reader: Box<dyn Read + Send>,
    /// Detected or given format.
    pub format: Format,
    /// The encoding the file was read as.
    pub encoding: &'static Encoding,
    /// Whether the file was gzip-compressed.
    pub gzip: bool,
}

const SAMPLE: usize = 64 * 1024;

/// Opens `raw` (the file's bytes) for reading rows. `encoding` forces an encoding; otherwise
/// UTF-8 is assumed when the first 64 KiB are valid UTF-8, else GB18030.
pub fn open(
    raw: Box<dyn Read + Send>,
    encoding: Option<&'static Encoding>,
) -> anyhow::Result<Opened> {
    let (magic, raw) = peek(raw, 2)?;
    let gzip = magic.starts_with(&[0x1f, 0x8b]);
    let stream: Box<dyn Read + Send> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(raw))
    } else {
        raw
    };
    let (sample, stream) = peek(stream, SAMPLE).context("cannot read the file (corrupt gzip?)")?;
    let encoding = encoding.unwrap_or_else(|| detect_encoding(&sample));
    let (text, _, _) = encoding.decode(&sample);
    let format = detect_format(&text)?;
    let reader: Box<dyn Read + Send> = if encoding == encoding_rs::UTF_8 {
        // Keep UTF-8 bytes as they are, so one bad row is quarantined instead of silently
        // replaced characters.
        stream
    } else {
        Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding))
                .build(stream),
        )
    };
    Ok(Opened {
        reader,
        format,
        encoding,
        gzip,
    })
}

/// Reads up to `n` bytes and returns them with a reader that still yields them first.
fn peek(mut r: Box<dyn Read + Send>, n: usize) -> std::io::Result<(Vec<u8>, Box<dyn Read + Send>)> {
    let mut head = Vec::with_capacity(n);
    (&mut r).take(n as u64).read_to_end(&mut head)?;
    let again = Cursor::new(head.clone());
    Ok((head, Box::new(again.chain(r))))
}

/// UTF-8 unless the sample is clearly in another encoding: invalid as UTF-8 with more bad
/// sequences than good multi-byte characters, yet clean as GB18030. Anything else is read as
/// UTF-8, so a few corrupt rows are quarantined rather than silently turned into wrong
/// characters; other legacy encodings are chosen with `--encoding`.
fn detect_encoding(sample: &[u8]) -> &'static Encoding {
    match std::str::from_utf8(sample) {
        Ok(_) => return encoding_rs::UTF_8,
        // A character cut at the end of the sample is not an error.
        Err(e) if e.error_len().is_none() => return encoding_rs::UTF_8,
        Err(_) => {}
    }
    let lossy = String::from_utf8_lossy(sample);
    let bad = lossy.matches('\u{fffd}').count();
    let good = lossy
        .chars()
        .filter(|c| !c.is_ascii() && *c != '\u{fffd}')
        .count();
    // The sample may end inside a character: decode it as a prefix, not as a whole file.
    let mut decoder = encoding_rs::GB18030.new_decoder_without_bom_handling();
    let mut text = String::with_capacity(
        decoder
            .max_utf8_buffer_length(sample.len())
            .unwrap_or(sample.len() * 3),
    );
    let (_, _, gb_errors) = decoder.decode_to_string(sample, &mut text, false);
    if bad > good && !gb_errors {
        encoding_rs::GB18030
    } else {
        encoding_rs::UTF_8
    }
}

fn detect_format(sample: &str) -> anyhow::Result<Format> {
    let text = sample.trim_start_matches('\u{feff}').trim_start();
    if text.is_empty() {
        bail!("the file is empty or has no header row");
    }
    if text.starts_with('{') {
        return Ok(Format::JsonLines);
    }
    let first_line = text.lines().next().unwrap_or("");
    // The delimiter is the candidate the header line uses most, outside quotes.
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0), (b'|', 0)];
    let mut quoted = false;
    for b in first_line.bytes() {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(c) = counts.iter_mut().find(|(d, _)| *d == b) {
                c.1 += 1;
            }
        }
    }
    let best = counts
        .iter()
        .max_by_key(|(d, n)| (*n, *d == b','))
        .expect("non-empty");
    Ok(Format::Csv {
        delimiter: if best.1 == 0 { b',' } else { best.0 },
    })
}

/// Parses an `--encoding` value (`auto`, or a WHATWG label such as `utf-8`, `gb18030`, `gbk`,
/// `shift_jis`, `windows-1252`).
pub fn parse_encoding(label: &str) -> anyhow::Result<Option<&'static Encoding>> {
    if label.eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    Encoding::for_label(label.trim().as_bytes())
        .map(Some)
        .with_context(|| {
            format!("--encoding {label:?}: unknown encoding (try utf-8, gb18030, windows-1252)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: Vec<u8>) -> (String, Format, &'static str, bool) {
        let mut o = open(Box::new(Cursor::new(bytes)), None).unwrap();
        let mut bytes = Vec::new();
        o.reader.read_to_end(&mut bytes).unwrap();
        let s = String::from_utf8_lossy(&bytes).into_owned();
        (s, o.format, o.encoding.name(), o.gzip)
    }

    #[test]
    fn detects_delimiters() {
        let check = |text: &str, d: u8| {
            assert_eq!(
                read_all(text.as_bytes().to_vec()).1,
                Format::Csv { delimiter: d },
                "{text:?}"
            )
        };
        check("a,b,c\n1,2,3\n", b',');
        check("a;b;c\n1;2;3\n", b';');
        check("a\tb\tc\n", b'\t');
        check("a|b\n", b'|');
        check("\"x;y\",b\n", b',');
        check("single\n", b',');
    }

    #[test]
    fn detects_json_lines_gzip_and_gb18030() {
        assert_eq!(read_all(b"{\"a\":1}\n".to_vec()).1, Format::JsonLines);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"a;b\n1;2\n").unwrap();
        let (text, format, _, gzip) = read_all(gz.finish().unwrap());
        assert!(gzip);
        assert_eq!(format, Format::Csv { delimiter: b';' });
        assert_eq!(text, "a;b\n1;2\n");

        let (bytes, _, _) = encoding_rs::GB18030.encode("name,city\n张伟,上海\n");
        let (text, _, encoding, _) = read_all(bytes.into_owned());
        assert_eq!(encoding, "gb18030");
        assert_eq!(text, "name,city\n张伟,上海\n");
    }

    #[test]
    fn a_utf8_file_with_a_corrupt_row_stays_utf8() {
        let mut bytes = "name\nRené\nZoë\n".as_bytes().to_vec();
        bytes.extend_from_slice(b"\xff\xfe\n");
        assert_eq!(read_all(bytes).2, "UTF-8");
    }

    #[test]
    fn gb18030_cut_inside_a_character_is_still_gb18030() {
        // Ten bytes a line: a 64 KiB sample ends after the first byte of 张.
        let text = "name\n张伟\n".repeat(20_000);
        let (bytes, _, _) = encoding_rs::GB18030.encode(&text);
        assert_eq!(SAMPLE % 10, 6);
        assert_eq!(detect_encoding(&bytes[..SAMPLE]).name(), "gb18030");
    }

    #[test]
    fn empty_input_is_an_error() {
        assert!(open(Box::new(Cursor::new(b"  \n".to_vec())), None).is_err());
    }
}
