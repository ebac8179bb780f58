//! A Vector ASC or BLF log (the first byte says which: `A` or `B`): every
//! input reads to frames or to an error that says where, never a panic, and
//! the frames read that the writer takes (it refuses times no log of its
//! format can hold) read back the same.

use canopy::format::asc::{AscReader, AscWriter};
use canopy::format::blf::{BlfReader, BlfWriter};
use canopy::format::frame::CanFrame;

pub fn run(data: &[u8]) {
    let Some((&which, log)) = data.split_first() else {
        return;
    };
    let frames: Vec<CanFrame> = match which {
        b'A' => AscReader::new(log).take(256).filter_map(Result::ok).collect(),
        b'B' => match BlfReader::new(log) {
            Ok(reader) => reader.take(256).filter_map(Result::ok).collect(),
            Err(_) => return,
        },
        _ => return,
    };
    let Some(first) = frames.iter().map(|f| f.ts_us).min() else {
        return;
    };
    // A reader numbers buses as a writer does (channel N is can<N-1>), so
    // what it read writes back and reads back the same.
    if which == b'A' {
        let Ok(mut writer) = AscWriter::new(Vec::new(), first) else {
            return;
        };
        if frames.iter().any(|f| writer.write(f).is_err()) {
            return;
        }
        let text = writer.finish().expect("writing to memory");
        let again: Vec<CanFrame> = (AscReader::new(text.as_slice()).collect::<Result<_, _>>())
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&text)));
        assert_eq!(again, frames, "{}", String::from_utf8_lossy(&text));
    } else {
        let Ok(mut writer) = BlfWriter::new(std::io::Cursor::new(Vec::new()), first) else {
            return;
        };
        if frames.iter().any(|f| writer.write(f).is_err()) {
            return;
        }
        let bytes = writer.finish().expect("writing to memory").into_inner();
        let again: Vec<CanFrame> = (BlfReader::new(bytes.as_slice()).expect("its own header"))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, frames);
    }
}
