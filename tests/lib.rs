//! Shared fixtures for the integration tests: the article's fleet and catalog.

use std::path::{Path, PathBuf};

use flotilla_core::catalog::{Catalog, CatalogAddon};
use flotilla_core::fleet::Fleet;
use flotilla_core::yaml::{parse_catalog, parse_single};

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
