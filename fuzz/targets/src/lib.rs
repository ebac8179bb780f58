//! What each fuzz target checks, one module per target, as a function of the
//! input bytes that panics when a property fails. Two things run them:
//!
//! - libFuzzer, through `cargo fuzz` (`make fuzz`): `fuzz/fuzz_targets/<name>.rs`
//!   hands each generated input to the module's `run`;
//! - the tests (`cargo test`): every seed of every target, replayed through
//!   the same `run` in the ordinary test build, so a crash once found and
//!   committed as a seed fails every later build.
//!
//! [`TARGETS`] names each target and where its seeds are.

pub mod api;
pub mod can_logs;
pub mod candump;
pub mod dbc;
pub mod j1939;
pub mod raw_parquet;
pub mod rule_sql;
pub mod telemetry;

/// A fuzz target: its name (its file under `fuzz/fuzz_targets/`), what it
/// checks, and the folders of the repository whose files are its seeds
/// besides its own `fuzz/seeds/<name>` (paths from `fuzz/`).
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
    pub more_seeds: &'static [&'static str],
}

pub const TARGETS: [Target; 8] = [
    Target {
        name: "candump",
        run: candump::run,
        more_seeds: &[],
    },
    Target {
        name: "dbc",
        run: dbc::run,
        more_seeds: &["../dbc", "../tests/oracle/dbc", "../tests/oracle/dbc/lenient"],
    },
    Target {
        name: "raw_parquet",
        run: raw_parquet::run,
        more_seeds: &["../shared/src/format/lake/testdata"],
    },
    Target {
        name: "telemetry",
        run: telemetry::run,
        more_seeds: &["../events"],
    },
    Target {
        name: "api",
        run: api::run,
        more_seeds: &[],
    },
    Target {
        name: "rule_sql",
        run: rule_sql::run,
        more_seeds: &[],
    },
    Target {
        name: "can_logs",
        run: can_logs::run,
        more_seeds: &[],
    },
    Target {
        name: "j1939",
        run: j1939::run,
        more_seeds: &[],
    },
];

#[cfg(test)]
mod seeds {
    use std::path::{Path, PathBuf};

    use super::TARGETS;

    fn fuzz_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// The files of `dir`, and of its folders, sorted.
    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files(&path, out);
            } else {
                out.push(path);
            }
        }
    }

    #[test]
    fn every_seed_of_every_target_passes_its_checks() {
        for target in &TARGETS {
            let own = format!("seeds/{}", target.name);
            let mut seeds = Vec::new();
            for dir in std::iter::once(own.as_str()).chain(target.more_seeds.iter().copied()) {
                files(&fuzz_dir().join(dir), &mut seeds);
            }
            seeds.sort();
            assert!(!seeds.is_empty(), "{}: no seeds", target.name);
            for seed in &seeds {
                let data = std::fs::read(seed).unwrap_or_else(|e| panic!("{}: {e}", seed.display()));
                let outcome = std::panic::catch_unwind(|| (target.run)(&data));
                assert!(outcome.is_ok(), "{} fails on its seed {}", target.name, seed.display());
            }
        }
    }

    #[test]
    fn make_fuzz_runs_every_target_with_its_seeds() {
        let makefile = std::fs::read_to_string(fuzz_dir().join("../Makefile")).expect("the Makefile");
        let line = |name: &str| {
            makefile
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("the Makefile sets no {name}"))
                .to_string()
        };
        let targets = line("FUZZ_TARGETS :=");
        let seeds = line("FUZZ_SEEDS =");
        for target in &TARGETS {
            assert!(
                targets.split_whitespace().any(|t| t == target.name),
                "FUZZ_TARGETS lacks {}",
                target.name
            );
            assert!(
                std::fs::exists(fuzz_dir().join("fuzz_targets").join(format!("{}.rs", target.name))).unwrap_or(false),
                "fuzz/fuzz_targets/{}.rs is missing",
                target.name
            );
            for dir in target.more_seeds {
                assert!(seeds.contains(dir), "FUZZ_SEEDS lacks {dir} for {}", target.name);
            }
        }
    }
}
