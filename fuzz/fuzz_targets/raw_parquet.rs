//! A raw lake object: opening and reading it yields frames or an error that
//! names the object, never a panic that escapes or an allocation without bound.
#![no_main]

use std::sync::Once;

use bytes::Bytes;
use canopy::format::candump::BusNames;
use canopy::format::lake::raw::RawFileReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The parquet crate panics on some malformed pages and `RawFileReader`
    // contains those panics; libFuzzer's hook would abort on them, so the
    // default hook is put back: a panic that escapes still fails the run.
    static DEFAULT_HOOK: Once = Once::new();
    DEFAULT_HOOK.call_once(|| {
        let _ = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
    });
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
});
