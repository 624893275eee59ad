//! Shared fixtures for the integration tests: the article's fleet and catalog.

use std::path::{Path, PathBuf};

use std::time::Duration;

use flotilla_agent::memory::Behavior;
use flotilla_core::catalog::{Catalog, CatalogAddon, CatalogObject};
use flotilla_core::fleet::Fleet;
use flotilla_core::yaml::{parse_catalog, parse_single};
use flotilla_sim::world::{Summary, World, WorldConfig};

/// `docs/examples`.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples")
}

/// The article's catalog, compiled.
pub fn article_catalog() -> Catalog {
    let text = std::fs::read_to_string(examples().join("catalog.yaml"))
        .unwrap_or_else(|e| panic!("catalog: {e}"));
    let (objects, errors) = parse_catalog(&text, "catalog.yaml");
    assert!(errors.is_empty(), "{errors:?}");
    let addons = objects
        .iter()
        .map(|o| CatalogAddon::compile(&o.value).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    Catalog::new(addons).unwrap_or_else(|e| panic!("{e}"))
}

/// The article's fleet.
pub fn article_fleet() -> Fleet {
    let text = std::fs::read_to_string(examples().join("fleet.yaml"))
        .unwrap_or_else(|e| panic!("fleet: {e}"));
    parse_single(&text, "fleet.yaml").unwrap_or_else(|e| panic!("{e}"))
}

/// The article's catalog objects, as `kubectl apply` takes them.
pub fn article_objects() -> Vec<CatalogObject> {
    let text = std::fs::read_to_string(examples().join("catalog.yaml"))
        .unwrap_or_else(|e| panic!("catalog: {e}"));
    let (objects, errors) = parse_catalog(&text, "catalog.yaml");
    assert!(errors.is_empty(), "{errors:?}");
    objects.into_iter().map(|o| o.value).collect()
}

/// A world holding the article's fleet (members with `behavior`, attached) and catalog,
/// manager running.
pub fn article_world(config: WorldConfig, behavior: &Behavior) -> World {
    let mut w = World::new(config);
    for c in &article_fleet().clusters {
        w.add_member(c, behavior.clone());
        w.attach(c)
            .unwrap_or_else(|e| panic!("attach {}: {e}", c.name));
    }
    w.apply(article_objects()).unwrap_or_else(|e| panic!("{e}"));
    w.start_manager();
    w
}

/// Advances (virtual) time until the world converges, or panics with why not.
pub async fn converge(w: &World, within: Duration) -> Summary {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match w.check_converged(20) {
            Ok(s) => return s,
            Err(why) if tokio::time::Instant::now() >= deadline => {
                panic!("not converged within {within:?}:\n{}", why.join("\n"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// How many Kubernetes minors separate the article (v1.20, v1.21) from the API servers the
/// real-mode tests run (v1.35 emulated, v1.36).
pub const TODAY_SHIFT: u32 = 15;

/// `text` with every Kubernetes minor version `v1.N` moved up `by` (`v1.20` → `v1.35`), so
/// the article's catalog means the same thing on today's API servers.
pub fn shift_minors(text: &str, by: u32) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("v1.") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<u32>() {
            Ok(minor) if digits > 0 => out.push_str(&(minor + by).to_string()),
            _ => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// What `docs/examples/catalog-v1.36.yaml` must hold: the article's catalog, shifted.
pub fn today_catalog_text() -> String {
    let text = std::fs::read_to_string(examples().join("catalog.yaml"))
        .unwrap_or_else(|e| panic!("catalog: {e}"));
    format!(
        "# GENERATED from catalog.yaml with every Kubernetes minor moved up {TODAY_SHIFT} (v1.20 -> v1.35,\n# v1.21 -> v1.36), so that the article's rules hold on today's API servers: the real-mode\n# tests and docs/debugging.md use it. Regenerate: FLOTILLA_BLESS=1 cargo test -p flotilla-tests --test article\n{}",
        shift_minors(&text, TODAY_SHIFT)
    )
}
