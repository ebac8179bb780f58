//! A bound on the work of reading a Parquet footer from outside, checked
//! before the parquet crate reads it.
//!
//! A footer is a Thrift struct in the compact protocol. The parquet crate
//! (59) skips an unknown field's list of booleans one element at a time
//! without consuming a byte for each, so a list that declares two billion
//! of them costs seconds of CPU for six bytes of footer, and a footer of a
//! few kB holds hundreds of such lists (`make fuzz`: a 2.2 kB raw object
//! took 3.3 s to refuse, and could have held the decoder until its
//! timeout). In a well-formed footer every element of a collection takes
//! at least a byte, so a collection that declares more elements than bytes
//! remain is malformed; refusing it bounds the reader's work by the
//! footer's size.

/// Nesting deeper than any Parquet footer needs (parquet-format's deepest
/// path is a handful of structs).
const MAX_DEPTH: usize = 64;

/// Checks the footer (the Thrift bytes before the length and `PAR1`);
/// what is wrong with it, and where, when a reader would work without bound.
pub fn check(footer: &[u8]) -> Result<(), String> {
    let mut walk = Walk { bytes: footer, at: 0 };
    walk.value(Type::STRUCT, MAX_DEPTH)
        .map_err(|problem| format!("malformed footer at byte {} of {}: {problem}", walk.at, footer.len()))
}

/// A compact-protocol type code.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Type(u8);

impl Type {
    const TRUE: Type = Type(1);
    const FALSE: Type = Type(2);
    const STRUCT: Type = Type(12);
}

struct Walk<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Walk<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.bytes.get(self.at).ok_or("it ends inside a value")?;
        self.at += 1;
        Ok(b)
    }

    fn skip(&mut self, n: usize) -> Result<(), String> {
        if n > self.remaining() {
            return Err(format!("a value of {n} bytes where {} remain", self.remaining()));
        }
        self.at += n;
        Ok(())
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift.min(63);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a varint longer than ten bytes".into())
    }

    /// A collection of `count` entries of `per_entry` values each: each
    /// value takes a byte at least.
    fn collection(&mut self, count: u64, per_entry: u64) -> Result<u64, String> {
        if count.saturating_mul(per_entry) > self.remaining() as u64 {
            return Err(format!(
                "a collection declares {count} entries where {} bytes remain",
                self.remaining()
            ));
        }
        Ok(count)
    }

    fn value(&mut self, kind: Type, depth: usize) -> Result<(), String> {
        let depth = depth.checked_sub(1).ok_or("nested deeper than a footer needs")?;
        match kind.0 {
            // A struct field's boolean is in its header.
            1 | 2 => Ok(()),
            3 => self.skip(1),
            4..=6 => self.varint().map(drop),
            7 => self.skip(8),
            8 => {
                let length = self.varint()?;
                self.skip(usize::try_from(length).map_err(|_| "a binary too long")?)
            }
            9 | 10 => {
                let header = self.byte()?;
                let element = Type(header & 0x0f);
                let count = match header >> 4 {
                    15 => self.varint()?,
                    short => u64::from(short),
                };
                for _ in 0..self.collection(count, 1)? {
                    self.element(element, depth)?;
                }
                Ok(())
            }
            11 => {
                let count = self.varint()?;
                if count > 0 {
                    let types = self.byte()?;
                    for _ in 0..self.collection(count, 2)? {
                        self.element(Type(types >> 4), depth)?;
                        self.element(Type(types & 0x0f), depth)?;
                    }
                }
                Ok(())
            }
            12 => loop {
                let header = self.byte()?;
                if header == 0 {
                    return Ok(());
                }
                if header >> 4 == 0 {
                    // A long-form field id follows the type.
                    self.varint()?;
                }
                self.value(Type(header & 0x0f), depth)?;
            },
            13 => self.skip(16),
            other => Err(format!("an unknown type {other}")),
        }
    }

    /// An element of a list, set or map: a boolean takes a byte there.
    fn element(&mut self, kind: Type, depth: usize) -> Result<(), String> {
        match kind {
            Type::TRUE | Type::FALSE => self.skip(1),
            _ => self.value(kind, depth),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The footer of a whole Parquet file, when it has one: its length is
    /// the four bytes before the closing magic.
    fn of_file(file: &[u8]) -> Option<&[u8]> {
        let tail = file.len().checked_sub(8)?;
        let length = u32::from_le_bytes(file[tail..tail + 4].try_into().ok()?) as usize;
        file.get(tail.checked_sub(length)?..tail)
    }

    /// A footer of `fields` struct fields, each a list of booleans that
    /// declares `count` elements and holds none.
    fn bool_lists(fields: usize, count: u32) -> Vec<u8> {
        let mut footer = Vec::new();
        for _ in 0..fields {
            // Field id delta 1, type list; a long-form list header of booleans.
            footer.extend_from_slice(&[0x19, 0xf1]);
            let mut n = count;
            loop {
                let b = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    footer.push(b);
                    break;
                }
                footer.push(b | 0x80);
            }
        }
        footer.push(0);
        footer
    }

    #[test]
    fn a_collection_longer_than_the_bytes_left_is_refused() {
        let footer = bool_lists(300, i32::MAX as u32);
        let error = check(&footer).unwrap_err();
        assert_eq!(
            error,
            "malformed footer at byte 7 of 2101: a collection declares 2147483647 entries where 2094 bytes remain"
        );
        // A list of booleans that holds its bytes is a footer like any other.
        let mut holds = bool_lists(1, 3);
        holds.splice(3..3, [1, 2, 1]);
        assert_eq!(check(&holds), Ok(()));
        assert!(check(&[0x15]).unwrap_err().contains("ends inside a value"));
        assert!(check(&[0x1e, 0]).unwrap_err().contains("unknown type 14"));
    }

    #[test]
    fn nesting_is_bounded() {
        // Field 1, a struct, in a struct, ... far deeper than any footer.
        let footer = vec![0x1c; 10_000];
        assert!(check(&footer).unwrap_err().contains("nested deeper"));
    }

    #[test]
    fn the_footers_of_files_written_here_pass() {
        use crate::format::frame::{CanFrame, CanId, FrameFlags};
        let mut writer = crate::format::lake::raw::RawWriter::new(Vec::new(), "test.parquet").unwrap();
        for i in 0..100 {
            let id = CanId::standard(0x100 + i).unwrap();
            writer
                .push(CanFrame::new(i64::from(i), "can0".into(), id, FrameFlags::empty(), &[1, 2]).unwrap())
                .unwrap();
        }
        let (bytes, _) = writer.finish().unwrap();
        assert_eq!(check(of_file(&bytes).unwrap()), Ok(()));
        // So are the kept fuzz finds whose footers the parquet crate reads.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/format/lake/testdata");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let Some(footer) = of_file(&bytes) else { continue };
            if parquet::file::metadata::ParquetMetaDataReader::decode_metadata(footer).is_ok() {
                assert_eq!(check(footer), Ok(()), "{}", path.display());
            }
        }
    }
}
