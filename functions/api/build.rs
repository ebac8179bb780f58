//! Embeds the console (`web/dist`, built by `make console`) in the binary, so
//! `sam deploy` ships it with the API and nothing else to upload. Without a
//! build, the console is one page that says how to make it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_none_or(|e| e != "gz") {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dist = manifest.join("web/dist");
    // A directory: cargo rebuilds when anything under it changes. Absolute,
    // so a checkout at another path sharing the target directory reruns this.
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut found = Vec::new();
    files(&dist, &mut found);
    found.sort();
    let mut code = String::from("/// The console's files, by URL path.\npub static ASSETS: &[Asset] = &[\n");
    for path in &found {
        let url = path
            .strip_prefix(&dist)
            .expect("under dist")
            .to_string_lossy()
            .replace('\\', "/");
        let gzip = PathBuf::from(format!("{}.gz", path.display()));
        let gzip = if gzip.exists() {
            format!("Some(include_bytes!({:?}))", gzip.display().to_string())
        } else {
            "None".to_string()
        };
        let _ = writeln!(
            code,
            "    Asset {{ path: \"/{url}\", content_type: {:?}, body: include_bytes!({:?}), gzip: {gzip} }},",
            content_type(path),
            path.display().to_string(),
        );
    }
    if !found.iter().any(|p| p.ends_with("index.html")) {
        code.push_str(
            "    Asset { path: \"/index.html\", content_type: \"text/html; charset=utf-8\", body: b\"<!doctype html><title>Canopy</title><p>The console is not built into this binary: run <code>make console</code>, then build the API again.</p>\", gzip: None },\n",
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("console_assets.rs");
    std::fs::write(out, code).expect("writing console_assets.rs");
}
