//! Reading FLEET.yaml and CATALOG.yaml from disk, with every problem reported at once.

use std::path::Path;

use flotilla_core::catalog::{Catalog, CatalogAddon, CatalogObject};
use flotilla_core::fleet::{Fleet, ResolvedCluster};
use flotilla_core::yaml::{parse_catalog, parse_single};

/// Everything wrong with the input, one problem per line, each naming file, line and field.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct InputError(pub Vec<String>);

fn read(path: &Path) -> Result<String, InputError> {
    std::fs::read_to_string(path)
        .map_err(|e| InputError(vec![format!("{}: cannot read: {e}", path.display())]))
}

/// Reads a catalog file as objects to apply, after checking that every object is valid.
pub fn load_catalog_objects(path: &Path) -> Result<Vec<CatalogObject>, InputError> {
    catalog_objects_from_str(&read(path)?, &path.display().to_string())
}

/// Parses catalog text as objects to apply, after checking that every object is valid.
pub fn catalog_objects_from_str(
    text: &str,
    origin: &str,
) -> Result<Vec<CatalogObject>, InputError> {
    compile_catalog(text, origin)?;
    let (objects, _) = parse_catalog(text, origin);
    Ok(objects.into_iter().map(|o| o.value).collect())
}

/// Reads and compiles a catalog file; every invalid object is reported, each field error on
/// its own line as `FILE:LINE: Kind namespace/name: field: problem`.
pub fn load_catalog(path: &Path) -> Result<Catalog, InputError> {
    compile_catalog(&read(path)?, &path.display().to_string())
}

fn compile_catalog(text: &str, origin: &str) -> Result<Catalog, InputError> {
    let (objects, parse_errors) = parse_catalog(text, origin);
    let mut addons = Vec::new();
    let mut lines: Vec<String> = parse_errors.iter().map(ToString::to_string).collect();
    for o in &objects {
        match CatalogAddon::compile(&o.value) {
            Ok(a) => addons.push(a),
            Err(e) => lines.extend(
                e.errors
                    .iter()
                    .map(|fe| format!("{origin}:{}: {}: {fe}", o.line, e.object)),
            ),
        }
    }
    if !lines.is_empty() {
        return Err(InputError(lines));
    }
    Catalog::new(addons).map_err(|e| InputError(vec![format!("{origin}: {e}")]))
}

/// Reads and validates a fleet file.
pub fn load_fleet(path: &Path) -> Result<Fleet, InputError> {
    let origin = path.display().to_string();
    let fleet: Fleet =
        parse_single(&read(path)?, &origin).map_err(|e| InputError(vec![e.to_string()]))?;
    let errs = fleet.validate();
    if !errs.is_empty() {
        return Err(InputError(
            errs.iter().map(|e| format!("{origin}: {e}")).collect(),
        ));
    }
    Ok(fleet)
}

/// Loads both files and derives every cluster's labels, as the manager would at attach.
pub fn load_world(
    fleet: &Path,
    catalog: &Path,
) -> Result<(Catalog, Vec<ResolvedCluster>), InputError> {
    // Report problems in both files in one go.
    let (f, c) = (load_fleet(fleet), load_catalog(catalog));
    let (f, c) = match (f, c) {
        (Ok(f), Ok(c)) => (f, c),
        (f, c) => {
            let mut lines = Vec::new();
            lines.extend(f.err().map(|e| e.0).unwrap_or_default());
            lines.extend(c.err().map(|e| e.0).unwrap_or_default());
            return Err(InputError(lines));
        }
    };
    let clusters = f
        .resolve(&c)
        .map_err(|e| InputError(vec![format!("{}: {e}", fleet.display())]))?;
    Ok((c, clusters))
}
