//! Lists the device kinds' declarations under `kinds/` for
//! `Kinds::builtin` (shared/src/domain/kind.rs), so that a new kind is a new
//! file there, not an edit to the code. `kinds/vehicle.toml` is the vehicle
//! kind, which has its own lane and is included by name.

use std::path::Path;
use std::{env, fs};

fn main() {
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("../kinds");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".toml") && name != "vehicle.toml")
        .collect();
    files.sort();
    let entries: String = files
        .iter()
        .map(|name| {
            format!(
                "    (\"kinds/{name}\", include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/../kinds/{name}\"))),\n"
            )
        })
        .collect();
    let out = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("device_kinds.rs");
    fs::write(&out, format!("&[\n{entries}]\n")).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
