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
