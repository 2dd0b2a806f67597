//! The live page as served: `src/page/index.html` with the providers of the registry
//! spliced into its `<script id="providers">` list, so a provider added to the registry
//! shows on the page with no edit of the page. The file's own list (what a test server
//! that serves the raw file shows) is checked against the registry below.

use crate::json::string;
use crate::providers::Provider;

const OPEN: &str = r#"<script type="application/json" id="providers">"#;
const CLOSE: &str = "</script>";

/// `[["kling","Kling","/v1/kling/scheduler/live"], …]`: name, title, live view path.
pub fn provider_list() -> String {
    let mut out = String::from("[");
    for (i, p) in Provider::all().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        out.push_str(&string(p.name()));
        out.push(',');
        out.push_str(&string(p.title()));
        out.push(',');
        out.push_str(&string(&format!("{}/live", p.public_path())));
        out.push(']');
    }
    out.push(']');
    out
}

/// The page with its provider list replaced by the registry's; the page unchanged
/// when it has no such list.
pub fn with_providers(page: &str) -> String {
    let Some(start) = page.find(OPEN).map(|at| at + OPEN.len()) else {
        return page.to_owned();
    };
    let Some(len) = page[start..].find(CLOSE) else {
        return page.to_owned();
    };
    format!(
        "{}{}{}",
        &page[..start],
        provider_list(),
        &page[start + len..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = include_str!("page/index.html");

    /// The list as written in the file.
    fn file_list() -> &'static str {
        let start = PAGE.find(OPEN).expect("the page has a provider list") + OPEN.len();
        let len = PAGE[start..].find(CLOSE).unwrap();
        PAGE[start..start + len].trim()
    }

    #[test]
    fn the_page_file_lists_the_registry_s_providers() {
        let file: serde_json::Value = serde_json::from_str(file_list()).unwrap();
        let registry: serde_json::Value = serde_json::from_str(&provider_list()).unwrap();
        assert_eq!(
            file, registry,
            "src/page/index.html's list is not the registry's"
        );
    }

    #[test]
    fn the_served_page_carries_the_registry_s_list() {
        let served = with_providers(PAGE);
        assert!(served.contains(&format!("{OPEN}{}{CLOSE}", provider_list())));
        assert!(served.contains(r#"["pixverse","PixVerse","/v2/pixverse/scheduler/live"]"#));
        assert_eq!(with_providers("<p>no list</p>"), "<p>no list</p>");
    }
}
