//! A raw lake object: opening and reading it yields frames or an error that
//! names the object, never a panic that escapes or an allocation without bound.

use bytes::Bytes;
use canopy::format::candump::BusNames;
use canopy::format::lake::raw::RawFileReader;

pub fn run(data: &[u8]) {
    let Ok(reader) = RawFileReader::from_bytes(Bytes::copy_from_slice(data), "fuzz.parquet") else {
        return;
    };
    let mut buses = BusNames::default();
    for batch in reader {
        let Ok(batch) = batch else { return };
        for i in 0..batch.len() {
            if let Ok(row) = batch.row(i) {
                let _ = row.to_frame(&mut buses);
            }
        }
    }
}
