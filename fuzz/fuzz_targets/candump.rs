//! A candump log: every line parses to a frame or to an error that names it,
//! and a frame that parses writes back as a line that parses to the same frame.
#![no_main]

use canopy::format::candump::{CandumpReader, write_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for item in CandumpReader::new(data, "fuzz.log") {
        let Ok(frame) = item else { continue };
        let mut line = Vec::new();
        write_frame(&mut line, &frame).expect("writing to memory");
        let again: Vec<_> = CandumpReader::new(line.as_slice(), "again.log").collect();
        match again.as_slice() {
            [Ok(back)] => assert_eq!(back, &frame, "{}", String::from_utf8_lossy(&line)),
            other => panic!("{:?} read back as {other:?}", String::from_utf8_lossy(&line)),
        }
    }
});
