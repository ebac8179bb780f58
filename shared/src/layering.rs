//! The layers of `lib.rs`, checked: a module may use only the layers beneath it.
//! `domain` is the model and sits beneath everything; `format` reads and
//! writes the model's bytes and text, so it may use `domain`, never the reverse.

use std::path::Path;

/// (layer folder, the layers it must not name).
const FORBIDDEN: [(&str, &[&str]); 4] = [
    ("format", &["crate::ports", "crate::services", "crate::adapters"]),
    (
        "domain",
        &["crate::format", "crate::ports", "crate::services", "crate::adapters"],
    ),
    ("ports", &["crate::adapters", "crate::services"]),
    ("services", &["crate::adapters"]),
];

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn each_layer_uses_only_the_layers_beneath_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    for (layer, forbidden) in FORBIDDEN {
        let mut files = Vec::new();
        sources(&root.join(layer), &mut files);
        assert!(!files.is_empty(), "layer {layer} has sources");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable source");
            for name in forbidden {
                if text.contains(name) {
                    broken.push(format!("{} names {name}", file.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
}
