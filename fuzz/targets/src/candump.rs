//! A candump log: every line parses to a frame or to an error that names it,
//! a frame that parses writes back as a line that parses to the same frame,
//! and the parser's one-pass fast path reads every line as its general one does.

use canopy::format::candump::{BusNames, CandumpReader, parse_line, parse_line_general, write_frame};

pub fn run(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        for line in text.lines().take(64) {
            let (mut a, mut b) = (BusNames::default(), BusNames::default());
            assert_eq!(parse_line(line, &mut a), parse_line_general(line, &mut b), "{line:?}");
        }
    }
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
}
