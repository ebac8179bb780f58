//! A raw lake object: opening and reading it yields frames or an error that
//! names the object, never a panic that escapes or an allocation without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The parquet crate panics on some malformed pages and `RawFileReader`
// contains those panics; libFuzzer's hook would abort on them, so the
// default hook is put back: a panic that escapes still fails the run.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
    });
}

fuzz_target!(|data: &[u8]| {
    quiet_panics();
    canopy_fuzz_targets::raw_parquet::run(data);
});
