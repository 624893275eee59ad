//! Reading YAML the way kubectl does, with errors a user can act on.
//!
//! Multi-document streams are split on `---` lines as `k8s.io/apimachinery/pkg/util/yaml`
//! splits them. Each document is parsed strictly: syntax errors, wrong types and unknown
//! fields (anywhere, including `metadata`) are errors that carry the file, the line and
//! column, the object (`FederatedAddon kubeaddons/kibana`) and the field path. Parsing
//! never panics, whatever the input.

use std::fmt;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::catalog::CatalogObject;
use crate::types::{FederatedAddon, FederatedClusterAddon};

/// A problem in an input file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// The file (or `-`, or a description of where the text came from).
    pub origin: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// `Kind namespace/name`, when the object could be identified.
    pub object: Option<String>,
    /// What is wrong, starting with the field path where known.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        if let Some(o) = &self.object {
            write!(f, ": {o}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// One document of a stream, and the line it starts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Document<'a> {
    /// The document's text.
    pub text: &'a str,
    /// 0-based line offset of its first line in the stream.
    pub line_offset: u64,
}

/// Splits a stream on lines that are `---` (optionally followed by spaces or a comment),
/// dropping documents that hold only blanks and comments.
pub fn split_documents(src: &str) -> Vec<Document<'_>> {
    let mut docs = Vec::new();
    let (mut start, mut start_line, mut pos) = (0usize, 0u64, 0usize);
    for (line_no, line) in (0u64..).zip(src.split_inclusive('\n')) {
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim();
            if rest.is_empty() || rest.starts_with('#') {
                docs.push(Document {
                    text: &src[start..pos],
                    line_offset: start_line,
                });
                start = pos + line.len();
                start_line = line_no + 1;
            }
        }
        pos += line.len();
    }
    docs.push(Document {
        text: &src[start..],
        line_offset: start_line,
    });
    docs.retain(|d| {
        d.text
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    docs
}

/// Parses one document strictly into `T`. Errors carry lines relative to the stream.
pub fn parse_document<T: DeserializeOwned>(
    doc: Document<'_>,
    origin: &str,
) -> Result<T, LoadError> {
    let mut unknown: Vec<(String, String)> = Vec::new();
    let base = |line: Option<u64>, column: Option<u64>, message: String| LoadError {
        origin: origin.to_owned(),
        line: line.map(|l| l + doc.line_offset),
        column,
        object: None,
        message,
    };
    let mut failed_at: Option<String> = None;
    let outcome = serde_saphyr::with_deserializer_from_str_with_options(
        doc.text,
        options_for(doc.text),
        |de| {
            let mut record = |path: serde_ignored::Path<'_>| {
                let field = match &path {
                    serde_ignored::Path::Map { key, .. } => key.clone(),
                    _ => String::new(),
                };
                unknown.push((path.to_string(), field));
            };
            let de = serde_ignored::Deserializer::new(de, &mut record);
            serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
                failed_at = Some(e.path().to_string());
                e.into_inner()
            })
        },
    );
    let value = match outcome {
        Err(e) => {
            let loc = e.location();
            let msg = strip_location(&e.without_snippet().to_string());
            let message = match failed_at.as_deref() {
                Some(path) if !path.is_empty() && path != "." => format!("{path}: {msg}"),
                _ => msg,
            };
            return Err(base(
                loc.map(|l| l.line()),
                loc.map(|l| l.column()),
                message,
            ));
        }
        Ok(v) => v,
    };
    unknown.retain(|(p, _)| p != "apiVersion" && p != "kind");
    if let Some((path, field)) = unknown.first() {
        let line = find_key_line(doc.text, field);
        return Err(base(line, None, format!("{path}: unknown field `{field}`")));
    }
    Ok(value)
}

/// Parser limits scaled to the input: large fleet files (10,000s of clusters) are legitimate,
/// while alias and anchor caps stay at their defaults, so amplification is still refused.
fn options_for(text: &str) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = budget.max_events.max(text.len());
    budget.max_nodes = budget.max_nodes.max(text.len() / 2);
    budget.max_total_scalar_bytes = budget.max_total_scalar_bytes.max(text.len());
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// serde-saphyr appends ` at line L, column C`; the location is reported separately.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// The first line (1-based) where `key:` starts a mapping entry; a best effort for errors
/// found after parsing.
fn find_key_line(text: &str, key: &str) -> Option<u64> {
    if key.is_empty() {
        return None;
    }
    (1u64..).zip(text.lines()).find_map(|(n, l)| {
        let t = l.trim_start().trim_start_matches("- ");
        (t.starts_with(key) && t[key.len()..].trim_start().starts_with(':')).then_some(n)
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    api_version: Option<String>,
    kind: Option<String>,
    metadata: Option<HeadMeta>,
}

#[derive(Deserialize)]
struct HeadMeta {
    name: Option<String>,
    namespace: Option<String>,
}

/// An object and the line (1-based) its document starts on, for later errors.
#[derive(Clone, Debug, PartialEq)]
pub struct Sourced<T> {
    /// The object.
    pub value: T,
    /// Where its document starts.
    pub line: u64,
}

/// Parses a catalog: FederatedAddon and FederatedClusterAddon objects, as `kubectl apply`
/// takes them. Returns the objects that parsed and every other document's error, so that one
/// run shows all problems (callers validate the parsed objects too).
pub fn parse_catalog(src: &str, origin: &str) -> (Vec<Sourced<CatalogObject>>, Vec<LoadError>) {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for doc in split_documents(src) {
        let at = |message: String, object: Option<String>| LoadError {
            origin: origin.to_owned(),
            line: Some(doc.line_offset + 1),
            column: None,
            object,
            message,
        };
        // A lenient first look, to name the object in errors and pick the type.
        let head: Head = match serde_saphyr::from_str(doc.text) {
            Ok(h) => h,
            Err(_) => match parse_document::<serde_json::Value>(doc, origin) {
                Err(e) => {
                    errors.push(e);
                    continue;
                }
                Ok(_) => {
                    errors.push(at(
                        "expected a Kubernetes object (a mapping with apiVersion and kind)".into(),
                        None,
                    ));
                    continue;
                }
            },
        };
        let kind = head.kind.clone().unwrap_or_default();
        let meta = head.metadata.as_ref();
        let name = meta.and_then(|m| m.name.clone()).unwrap_or_default();
        let ns = meta.and_then(|m| m.namespace.clone());
        let object = Some(match &ns {
            Some(ns) => format!("{kind} {ns}/{name}"),
            None => format!("{kind} {name}"),
        });
        let want_group = "types.kubefed.io/v1beta1";
        if head.api_version.as_deref() != Some(want_group)
            && matches!(kind.as_str(), "FederatedAddon" | "FederatedClusterAddon")
        {
            errors.push(at(
                format!(
                    "apiVersion: Unsupported value: {:?}: supported values: \"{want_group}\"",
                    head.api_version.unwrap_or_default()
                ),
                object,
            ));
            continue;
        }
        let parsed = match kind.as_str() {
            "FederatedAddon" => {
                parse_document::<FederatedAddon>(doc, origin).map(CatalogObject::Addon)
            }
            "FederatedClusterAddon" => parse_document::<FederatedClusterAddon>(doc, origin)
                .map(CatalogObject::ClusterAddon),
            "" => {
                errors.push(at(
                    "kind: Required value: every object needs a kind".into(),
                    object,
                ));
                continue;
            }
            other => {
                errors.push(at(
                    format!("kind: Unsupported value: {other:?}: supported values: \"FederatedAddon\", \"FederatedClusterAddon\""),
                    object,
                ));
                continue;
            }
        };
        match parsed {
            Ok(value) => objects.push(Sourced {
                value,
                line: doc.line_offset + 1,
            }),
            Err(mut e) => {
                e.object = object;
                errors.push(e);
            }
        }
    }
    (objects, errors)
}

/// Parses a single-document file strictly into `T`.
pub fn parse_single<T: DeserializeOwned>(src: &str, origin: &str) -> Result<T, LoadError> {
    let docs = split_documents(src);
    match docs.as_slice() {
        [doc] => parse_document(*doc, origin),
        [] => Err(LoadError {
            origin: origin.into(),
            line: None,
            column: None,
            object: None,
            message: "the file is empty".into(),
        }),
        [_, second, ..] => Err(LoadError {
            origin: origin.into(),
            line: Some(second.line_offset + 1),
            column: None,
            object: None,
            message: "expected one YAML document, found more".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_kubectl() {
        let src = "---\na: 1\n--- # comment\n# only a comment\n---\nb: 2\n---x: not a separator\n";
        let docs = split_documents(src);
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[0],
            Document {
                text: "a: 1\n",
                line_offset: 1
            }
        );
        assert_eq!(docs[1].line_offset, 5);
        assert!(docs[1].text.contains("---x"));
    }

    const GOOD: &str = "apiVersion: types.kubefed.io/v1beta1
kind: FederatedClusterAddon
metadata:
  name: cert-manager
spec:
  template:
    spec: {}
  placement:
    clusterSelector: {}
";

    #[test]
    fn parses_objects() {
        let (objs, errs) = parse_catalog(
            &format!("{GOOD}---\n{}", GOOD.replace("cert-manager", "traefik")),
            "c.yaml",
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(objs.len(), 2);
        assert_eq!(&*objs[1].value.id().name, "traefik");
        assert_eq!(objs[1].line, 11);
    }

    fn one_error(src: &str) -> String {
        let (_, e) = parse_catalog(src, "c.yaml");
        assert_eq!(e.len(), 1, "{e:?}");
        e[0].to_string()
    }

    #[test]
    fn errors_carry_file_line_object_and_field() {
        let second = format!(
            "{GOOD}---\n{}",
            GOOD.replace("clusterSelector: {}", "clusterSelectr: {}")
        );
        assert_eq!(
            one_error(&second),
            "c.yaml:19:5: FederatedClusterAddon cert-manager: spec.placement.clusterSelectr: unknown field `clusterSelectr`, expected one of clusters, clusterSelector"
        );
        let meta = GOOD.replace("  name: cert-manager", "  name: cert-manager\n  nmae: x");
        assert_eq!(
            one_error(&meta),
            "c.yaml:5: FederatedClusterAddon cert-manager: metadata.nmae: unknown field `nmae`"
        );
        let top = GOOD.replace("spec:\n  template", "specc: 1\nspec:\n  template");
        assert_eq!(
            one_error(&top),
            "c.yaml:5: FederatedClusterAddon cert-manager: specc: unknown field `specc`"
        );
        let kind = GOOD.replace("kind: FederatedClusterAddon", "kind: Deployment");
        assert!(one_error(&kind).starts_with(
            "c.yaml:1: Deployment cert-manager: kind: Unsupported value: \"Deployment\""
        ));
        let syntax = GOOD.replace("spec: {}", "spec: {");
        assert!(
            one_error(&syntax).starts_with("c.yaml:"),
            "{}",
            one_error(&syntax)
        );
        let typ = GOOD.replace("clusterSelector: {}", "clusterSelector: [1]");
        let t = one_error(&typ);
        assert!(t.starts_with("c.yaml:9:"), "{t}");
        assert!(t.contains("spec.placement.clusterSelector"), "{t}");
    }

    #[test]
    fn never_panics_on_garbage() {
        for src in [
            "",
            "---",
            ":",
            "[",
            "a: [b",
            "- 1\n- 2",
            "kind: 3",
            "\u{0}",
            "a: &x [*x]",
            "!!binary x",
        ] {
            let _ = parse_catalog(src, "x");
            let _ = parse_single::<serde_json::Value>(src, "x");
        }
    }
}
