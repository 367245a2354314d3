//! Embeds the REST compatibility documents (`rest_compat/*.graphql`) into the binary, so adding an
//! endpoint means adding a document and nothing else.

use std::path::Path;
use std::{env, fs};

fn main() {
    // Read when the script runs, not when it is compiled: a build script compiled for another copy
    // of the sources (a worktree sharing the target directory) must not read that copy.
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest_dir).join("rest_compat");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut documents: Vec<_> = fs::read_dir(&dir)
        .expect("rest_compat/ exists")
        .map(|entry| entry.expect("rest_compat/ is readable").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "graphql"))
        .collect();
    documents.sort();
    let mut generated = String::from(
        "/// Every REST endpoint document: file name and text.\npub const DOCUMENTS: &[(&str, &str)] = &[\n",
    );
    for path in &documents {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.file_name().expect("a file").to_string_lossy();
        generated.push_str(&format!("    ({name:?}, include_str!({:?})),\n", path.display().to_string()));
    }
    generated.push_str("];\n");
    let out = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("rest_documents.rs");
    fs::write(out, generated).expect("OUT_DIR is writable");
}
