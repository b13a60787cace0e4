//! DESIGN.md §1: the companion library never imports the mock device or the sandbox bank;
//! only the composition root (the binary's main.rs and demo.rs) wires them in.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_library_never_names_device_sim_or_bank_sandbox() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 10, "found only {files:?}");
    let mut offenders = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap_or(&file);
        if relative == Path::new("main.rs") || relative == Path::new("demo.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for forbidden in ["device_sim", "bank_sandbox", "device-sim", "bank-sandbox"] {
            if text.contains(forbidden) {
                offenders.push(format!("{} mentions {forbidden}", relative.display()));
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

#[test]
fn the_library_does_not_declare_the_demo_module() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .unwrap_or_default();
    assert!(!lib.contains("mod demo"), "{lib}");
}
