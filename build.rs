//! Build-time steps, so the sources stay readable and the wasm stays small:
//! - `openapi.yaml` (the hand-written API document) becomes the JSON that
//!   `GET /openapi.json` serves, so the YAML stays the one source of truth;
//! - `src/page/index.html` (the live view) loses its comments and indentation.

use std::{env, fs, path::Path};

fn main() {
    let out = env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let out = Path::new(&out);

    println!("cargo:rerun-if-changed=openapi.yaml");
    let yaml = fs::read_to_string("openapi.yaml").expect("openapi.yaml is readable");
    let doc: serde_json::Value = serde_yaml::from_str(&yaml).expect("openapi.yaml is valid YAML");
    let json = serde_json::to_string(&doc).expect("the document serialises");
    fs::write(out.join("openapi.json"), json).expect("OUT_DIR is writable");

    println!("cargo:rerun-if-changed=src/page/index.html");
    let page = fs::read_to_string("src/page/index.html").expect("the page is readable");
    fs::write(out.join("page.html"), minify_page(&page)).expect("OUT_DIR is writable");
}

/// Drops what only a reader of the source needs: `<!-- -->` and `/* */` comments,
/// whole-line `//` comments, indentation and blank lines. Nothing inside a line
/// changes, so no string or expression of the page's script can be altered.
fn minify_page(page: &str) -> String {
    let without = strip_between(&strip_between(page, "<!--", "-->"), "/*", "*/");
    without
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn strip_between(text: &str, open: &str, close: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        out.push_str(&rest[..start]);
        match rest[start + open.len()..].find(close) {
            Some(end) => rest = &rest[start + open.len() + end + close.len()..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}
