//! Field errors in the shape Kubernetes reports them (`k8s.io/apimachinery/pkg/util/validation/field`).
//!
//! Users read these next to their YAML, so the text follows kubectl's exactly:
//! `spec.placement.clusterSelector.matchExpressions[1].values: Required value: ...`.

use std::fmt;

/// A path to a field inside an object, printed as `a.b[1].c` or `a.b[key]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(String);

impl FieldPath {
    /// The root path, e.g. `spec`.
    pub fn new(root: &str) -> Self {
        Self(root.to_owned())
    }

    /// `self.name`.
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Self(name.to_owned())
        } else {
            Self(format!("{}.{name}", self.0))
        }
    }

    /// `self[i]`.
    pub fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }

    /// `self[key]`.
    pub fn key(&self, key: &str) -> Self {
        Self(format!("{}[{key}]", self.0))
    }

    /// The path as kubectl prints it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is wrong with a field, with apimachinery's wording for each kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// `Required value: <detail>`.
    Required,
    /// `Forbidden: <detail>`.
    Forbidden,
    /// `Invalid value: "<value>": <detail>`.
    Invalid(String),
}

/// One problem with one field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct FieldError {
    /// Where the problem is.
    pub path: FieldPath,
    /// What kind of problem.
    pub kind: FieldErrorKind,
    /// Why, in apimachinery's words.
    pub detail: String,
}

impl FieldError {
    /// A missing value.
    pub fn required(path: FieldPath, detail: impl Into<String>) -> Self {
        Self {
            path,
            kind: FieldErrorKind::Required,
            detail: detail.into(),
        }
    }

    /// A value that must not be there.
    pub fn forbidden(path: FieldPath, detail: impl Into<String>) -> Self {
        Self {
            path,
            kind: FieldErrorKind::Forbidden,
            detail: detail.into(),
        }
    }

    /// A value that is there but wrong.
    pub fn invalid(path: FieldPath, value: &str, detail: impl Into<String>) -> Self {
        Self {
            path,
            kind: FieldErrorKind::Invalid(value.to_owned()),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            FieldErrorKind::Required => write!(f, "{}: Required value: {}", self.path, self.detail),
            FieldErrorKind::Forbidden => write!(f, "{}: Forbidden: {}", self.path, self.detail),
            FieldErrorKind::Invalid(v) => {
                write!(f, "{}: Invalid value: {v:?}: {}", self.path, self.detail)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_like_kubectl() {
        let p = FieldPath::new("spec")
            .child("placement")
            .child("clusterSelector");
        assert_eq!(
            p.child("matchExpressions")
                .index(1)
                .child("values")
                .as_str(),
            "spec.placement.clusterSelector.matchExpressions[1].values"
        );
        assert_eq!(
            p.child("matchLabels").key("env").as_str(),
            "spec.placement.clusterSelector.matchLabels[env]"
        );
    }

    #[test]
    fn errors_print_like_apimachinery() {
        let p = FieldPath::new("x");
        assert_eq!(
            FieldError::required(p.clone(), "must").to_string(),
            "x: Required value: must"
        );
        assert_eq!(
            FieldError::forbidden(p.clone(), "may not").to_string(),
            "x: Forbidden: may not"
        );
        assert_eq!(
            FieldError::invalid(p, "Gt", "bad").to_string(),
            "x: Invalid value: \"Gt\": bad"
        );
    }
}
