//! Label selectors with exactly the semantics of `k8s.io/apimachinery`.
//!
//! [`LabelSelector`] is the wire type (`metav1.LabelSelector`). It is turned into a validated
//! [`Selector`] by [`LabelSelector::to_selector`], which validates as
//! `ValidateLabelSelector` does and converts as `LabelSelectorAsSelector` does:
//! a missing selector selects nothing, an empty one everything, and every requirement must hold.
//!
//! | operator     | key absent | key present with value v |
//! |--------------|------------|--------------------------|
//! | In / `=`     | no         | v is one of values       |
//! | NotIn        | **yes**    | v is none of values      |
//! | Exists       | no         | yes                      |
//! | DoesNotExist | yes        | no                       |
//!
//! kube-rs has its own selector type, but it accepts what the API server rejects (In with no
//! values, Exists with values, any key syntax), so placement uses this one.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldPath};
use crate::syntax::{label_key_errors, label_map_errors, label_value_errors};

/// A label query over clusters or addons (`metav1.LabelSelector`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Each entry is an equality requirement; all must hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// Set-based requirements; all must hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
}

/// One set-based requirement (`metav1.LabelSelectorRequirement`).
///
/// `operator` stays a string on the wire so that a bad operator is reported by validation,
/// with its field path, rather than as an opaque parse error.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    /// The label key the requirement is about.
    pub key: String,
    /// One of In, NotIn, Exists, DoesNotExist.
    pub operator: String,
    /// Values for In and NotIn; must be empty for Exists and DoesNotExist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

/// A requirement's operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    /// A `matchLabels` entry: the same as In with one value, printed as `key=value`.
    Equals,
    /// The key is present and its value is one of the values.
    In,
    /// The key is absent, or its value is none of the values.
    NotIn,
    /// The key is present.
    Exists,
    /// The key is absent.
    DoesNotExist,
}

impl Operator {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "In" => Self::In,
            "NotIn" => Self::NotIn,
            "Exists" => Self::Exists,
            "DoesNotExist" => Self::DoesNotExist,
            _ => return None,
        })
    }
}

/// A validated requirement.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// How the value is compared.
    pub operator: Operator,
    /// The values, in the order the user wrote them (empty for Exists / DoesNotExist).
    pub values: Vec<String>,
}

impl Requirement {
    /// Whether a cluster whose label `key` has `value` (`None`: absent) satisfies this.
    #[inline]
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match (self.operator, value) {
            (Operator::Equals | Operator::In, Some(v)) => has(v),
            (Operator::Equals | Operator::In, None) => false,
            (Operator::NotIn, Some(v)) => !has(v),
            (Operator::NotIn, None) => true,
            (Operator::Exists, v) => v.is_some(),
            (Operator::DoesNotExist, v) => v.is_none(),
        }
    }

    /// Whether a label set satisfies this.
    pub fn matches(&self, labels: &impl Labels) -> bool {
        self.matches_value(labels.get(&self.key))
    }
}

impl fmt::Display for Requirement {
    /// `key In [a b]`, `key NotIn [a]`, `key Exists`, `key DoesNotExist`, `key=value`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = || self.values.join(" ");
        match self.operator {
            Operator::Equals => write!(
                f,
                "{}={}",
                self.key,
                self.values.first().map_or("", String::as_str)
            ),
            Operator::In => write!(f, "{} In [{}]", self.key, list()),
            Operator::NotIn => write!(f, "{} NotIn [{}]", self.key, list()),
            Operator::Exists => write!(f, "{} Exists", self.key),
            Operator::DoesNotExist => write!(f, "{} DoesNotExist", self.key),
        }
    }
}

/// A validated selector, ready to match.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Selector {
    /// No selector at all: selects nothing (`labels.Nothing()`).
    Nothing,
    /// All requirements must hold; none at all selects everything (`labels.Everything()`).
    All(Vec<Requirement>),
}

impl Selector {
    /// Validates and converts an optional wire selector (`LabelSelectorAsSelector`).
    pub fn from_wire(
        sel: Option<&LabelSelector>,
        path: &FieldPath,
    ) -> Result<Self, Vec<FieldError>> {
        match sel {
            None => Ok(Self::Nothing),
            Some(s) => s.to_selector(path),
        }
    }

    /// Whether `labels` are selected.
    pub fn matches(&self, labels: &impl Labels) -> bool {
        match self {
            Self::Nothing => false,
            Self::All(reqs) => reqs.iter().all(|r| r.matches(labels)),
        }
    }

    /// The requirements, in order (empty for [`Selector::Nothing`]).
    pub fn requirements(&self) -> &[Requirement] {
        match self {
            Self::Nothing => &[],
            Self::All(r) => r,
        }
    }
}

impl LabelSelector {
    /// Validation errors, as `ValidateLabelSelector` reports them under `path`.
    pub fn validate(&self, path: &FieldPath) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if let Some(ml) = &self.match_labels {
            errs.extend(label_map_errors(ml, &path.child("matchLabels")));
        }
        for (i, expr) in self.match_expressions.iter().flatten().enumerate() {
            let p = path.child("matchExpressions").index(i);
            let values = expr.values.as_deref().unwrap_or_default();
            match Operator::parse(&expr.operator) {
                Some(Operator::In | Operator::NotIn) if values.is_empty() => {
                    errs.push(FieldError::required(
                        p.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ))
                }
                Some(Operator::Exists | Operator::DoesNotExist) if !values.is_empty() => {
                    errs.push(FieldError::forbidden(
                        p.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ))
                }
                Some(_) => {}
                None => errs.push(FieldError::invalid(
                    p.child("operator"),
                    &expr.operator,
                    "not a valid selector operator",
                )),
            }
            errs.extend(
                label_key_errors(&expr.key)
                    .into_iter()
                    .map(|m| FieldError::invalid(p.child("key"), &expr.key, m)),
            );
            for (j, v) in values.iter().enumerate() {
                errs.extend(
                    label_value_errors(v)
                        .into_iter()
                        .map(|m| FieldError::invalid(p.child("values").index(j), v, m)),
                );
            }
        }
        errs
    }

    /// Validates, then converts: matchLabels (sorted by key) first, then matchExpressions in order.
    pub fn to_selector(&self, path: &FieldPath) -> Result<Selector, Vec<FieldError>> {
        let errs = self.validate(path);
        if !errs.is_empty() {
            return Err(errs);
        }
        let mut reqs = Vec::new();
        for (k, v) in self.match_labels.iter().flatten() {
            reqs.push(Requirement {
                key: k.clone(),
                operator: Operator::Equals,
                values: vec![v.clone()],
            });
        }
        for expr in self.match_expressions.iter().flatten() {
            // Validation above guarantees the operator parses.
            let Some(operator) = Operator::parse(&expr.operator) else {
                continue;
            };
            reqs.push(Requirement {
                key: expr.key.clone(),
                operator,
                values: expr.values.clone().unwrap_or_default(),
            });
        }
        Ok(Selector::All(reqs))
    }
}

/// Anything that can answer "what is the value of label `key`?".
pub trait Labels {
    /// The value of `key`, or `None` when the label is absent.
    fn get(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Labels for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: Option<&[&str]>) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn sel(exprs: Vec<LabelSelectorRequirement>) -> Selector {
        LabelSelector {
            match_labels: None,
            match_expressions: Some(exprs),
        }
        .to_selector(&FieldPath::new("s"))
        .expect("valid")
    }

    /// Every row of apimachinery's `Requirement.Matches` table.
    #[test]
    fn matching_table() {
        let absent = labels(&[("other", "x")]);
        let v = labels(&[("k", "v")]);
        let w = labels(&[("k", "w")]);
        let empty_val = labels(&[("k", "")]);
        type Case<'a> = (
            &'a str,
            Option<&'a [&'a str]>,
            &'a BTreeMap<String, String>,
            bool,
        );
        let cases: &[Case<'_>] = &[
            ("In", Some(&["v"]), &absent, false),
            ("In", Some(&["v"]), &v, true),
            ("In", Some(&["v"]), &w, false),
            ("In", Some(&["a", "v"]), &v, true),
            ("In", Some(&[""]), &empty_val, true),
            ("In", Some(&[""]), &absent, false),
            ("NotIn", Some(&["v"]), &absent, true),
            ("NotIn", Some(&["v"]), &v, false),
            ("NotIn", Some(&["v"]), &w, true),
            ("NotIn", Some(&[""]), &empty_val, false),
            ("Exists", None, &absent, false),
            ("Exists", None, &v, true),
            ("Exists", None, &empty_val, true),
            ("DoesNotExist", None, &absent, true),
            ("DoesNotExist", None, &v, false),
            ("DoesNotExist", None, &empty_val, false),
        ];
        for (op, values, ls, want) in cases {
            assert_eq!(
                sel(vec![expr("k", op, *values)]).matches(*ls),
                *want,
                "{op} {values:?} on {ls:?}"
            );
        }
    }

    #[test]
    fn nil_empty_and_contradictions() {
        let ls = labels(&[("a", "1")]);
        assert!(
            !Selector::from_wire(None, &FieldPath::new("s"))
                .expect("valid")
                .matches(&ls)
        );
        let everything = LabelSelector::default()
            .to_selector(&FieldPath::new("s"))
            .expect("valid");
        assert!(everything.matches(&ls) && everything.matches(&labels(&[])));
        // Same key in both parts, contradicting: matches nothing.
        let contra = LabelSelector {
            match_labels: Some(labels(&[("a", "1")])),
            match_expressions: Some(vec![expr("a", "NotIn", Some(&["1"]))]),
        };
        assert!(
            !contra
                .to_selector(&FieldPath::new("s"))
                .expect("valid")
                .matches(&ls)
        );
        // Same key in both parts, agreeing: AND.
        let agree = LabelSelector {
            match_labels: Some(labels(&[("a", "1")])),
            match_expressions: Some(vec![expr("a", "In", Some(&["1", "2"]))]),
        };
        assert!(
            agree
                .to_selector(&FieldPath::new("s"))
                .expect("valid")
                .matches(&ls)
        );
    }

    fn errors(s: LabelSelector) -> Vec<String> {
        s.validate(&FieldPath::new("spec.placement.clusterSelector"))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Every row of apimachinery's validation rules.
    #[test]
    fn validation_table() {
        let one = |e| LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![e]),
        };
        let p = "spec.placement.clusterSelector.matchExpressions[0]";
        assert_eq!(
            errors(one(expr("k", "In", None))),
            [format!(
                "{p}.values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
            )]
        );
        assert_eq!(
            errors(one(expr("k", "NotIn", Some(&[])))),
            [format!(
                "{p}.values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
            )]
        );
        assert_eq!(
            errors(one(expr("k", "Exists", Some(&["x"])))),
            [format!(
                "{p}.values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
            )]
        );
        assert_eq!(
            errors(one(expr("k", "DoesNotExist", Some(&["x"])))),
            [format!(
                "{p}.values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
            )]
        );
        for op in ["Gt", "Lt", "in", "", "Equals", "="] {
            assert_eq!(
                errors(one(expr("k", op, Some(&["1"])))),
                [format!(
                    "{p}.operator: Invalid value: {op:?}: not a valid selector operator"
                )]
            );
        }
        assert!(
            errors(one(expr("k", "Exists", Some(&[])))).is_empty(),
            "an empty list is no values"
        );
        assert!(
            errors(one(expr("k", "In", Some(&[""])))).is_empty(),
            "empty string is a valid value"
        );
        let bad_key = errors(one(expr("a b", "Exists", None)));
        assert_eq!(bad_key.len(), 1);
        assert!(bad_key[0].starts_with(&format!(
            "{p}.key: Invalid value: \"a b\": name part must consist"
        )));
        let bad_val = errors(one(expr("k", "In", Some(&["ok", "-bad"]))));
        assert_eq!(bad_val.len(), 1);
        assert!(bad_val[0].starts_with(&format!(
            "{p}.values[1]: Invalid value: \"-bad\": a valid label"
        )));
        let ml = errors(LabelSelector {
            match_labels: Some(labels(&[("x/", "v!")])),
            match_expressions: None,
        });
        assert_eq!(ml.len(), 3, "{ml:?}");
        assert!(ml[0].starts_with("spec.placement.clusterSelector.matchLabels: Invalid value: \"x/\": name part must be non-empty"));
        assert!(
            ml[2].starts_with(
                "spec.placement.clusterSelector.matchLabels[x/]: Invalid value: \"v!\""
            )
        );
    }

    #[test]
    fn display() {
        let s = sel(vec![
            expr("t", "Exists", None),
            expr("t", "NotIn", Some(&["Konvoy"])),
            expr("v", "In", Some(&["v1.16", "v1.17"])),
            expr("x", "DoesNotExist", None),
        ]);
        let shown: Vec<String> = s.requirements().iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "t Exists",
                "t NotIn [Konvoy]",
                "v In [v1.16 v1.17]",
                "x DoesNotExist"
            ]
        );
        let eq = LabelSelector {
            match_labels: Some(labels(&[("env", "prod")])),
            match_expressions: None,
        };
        assert_eq!(
            eq.to_selector(&FieldPath::new("s"))
                .expect("valid")
                .requirements()[0]
                .to_string(),
            "env=prod"
        );
    }
}
