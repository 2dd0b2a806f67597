//! Turns `openapi.yaml` (the hand-written API document) into the JSON that
//! `GET /openapi.json` serves, so the YAML stays the one source of truth.

use std::{env, fs, path::Path};

fn main() {
    println!("cargo:rerun-if-changed=openapi.yaml");
    let yaml = fs::read_to_string("openapi.yaml").expect("openapi.yaml is readable");
    let doc: serde_json::Value = serde_yaml::from_str(&yaml).expect("openapi.yaml is valid YAML");
    let json = serde_json::to_string(&doc).expect("the document serialises");
    let out = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("openapi.json");
    fs::write(out, json).expect("OUT_DIR is writable");
}
