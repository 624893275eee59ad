//! Kubernetes label key and value syntax (`k8s.io/apimachinery/pkg/util/validation`).
//!
//! Hand-written matchers for the three regular expressions apimachinery uses; each function
//! returns apimachinery's messages so that errors read the same as the API server's.

use std::collections::BTreeMap;

use crate::field::{FieldError, FieldPath};

/// Longest label value, and longest name part of a key.
pub const LABEL_VALUE_MAX_LEN: usize = 63;
/// Longest DNS-1123 subdomain (the optional key prefix).
pub const DNS1123_SUBDOMAIN_MAX_LEN: usize = 253;

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`: non-empty, alphanumeric at both ends.
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`.
fn is_dns1123_subdomain_syntax(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            match (b.first(), b.last()) {
                (Some(f), Some(l)) => {
                    is_lower_alnum(*f)
                        && is_lower_alnum(*l)
                        && b.iter().all(|c| is_lower_alnum(*c) || *c == b'-')
                }
                _ => false,
            }
        })
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Problems with a DNS-1123 subdomain, as `validation.IsDNS1123Subdomain` words them.
pub fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX_LEN {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LEN));
    }
    if !is_dns1123_subdomain_syntax(s) {
        errs.push(format!(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', \
             and must start and end with an alphanumeric character (e.g. 'example.com', regex used for \
             validation is '{DNS1123_SUBDOMAIN_FMT}')"
        ));
    }
    errs
}

/// Problems with a label key, as `validation.IsQualifiedName` words them; empty means valid.
pub fn label_key_errors(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_owned());
            } else {
                errs.extend(
                    dns1123_subdomain_errors(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start \
                 and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex \
                 used for validation is '{QUALIFIED_NAME_FMT}') with an optional DNS subdomain prefix and '/' \
                 (e.g. 'example.com/MyName')"
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > LABEL_VALUE_MAX_LEN {
        errs.push(format!("name part {}", max_len_error(LABEL_VALUE_MAX_LEN)));
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end \
             with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for \
             validation is '{QUALIFIED_NAME_FMT}')"
        ));
    }
    errs
}

/// Problems with a label value, as `validation.IsValidLabelValue` words them; empty means valid.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LEN {
        errs.push(max_len_error(LABEL_VALUE_MAX_LEN));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errs.push(format!(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', \
             and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or \
             '12345', regex used for validation is '{LABEL_VALUE_FMT}')"
        ));
    }
    errs
}

/// Problems with a whole label map, as `ValidateLabels` reports them under `path`: key
/// errors on `path`, value errors on `path[key]`.
pub fn label_map_errors(labels: &BTreeMap<String, String>, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels {
        errs.extend(
            label_key_errors(k)
                .into_iter()
                .map(|m| FieldError::invalid(path.clone(), k, m)),
        );
        errs.extend(
            label_value_errors(v)
                .into_iter()
                .map(|m| FieldError::invalid(path.key(k), v, m)),
        );
    }
    errs
}

/// Whether `key` is a valid label key.
pub fn is_label_key(key: &str) -> bool {
    label_key_errors(key).is_empty()
}

/// Whether `value` is a valid label value.
pub fn is_label_value(value: &str) -> bool {
    label_value_errors(value).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in [
            "a",
            "A1",
            "a.b-c_d",
            "kommander.mesosphere.io/cluster-type",
            "x/y",
            "1",
            &"a".repeat(63),
        ] {
            assert!(is_label_key(ok), "{ok} should be valid");
        }
        let long_prefix = format!("{}/a", "a".repeat(254));
        for bad in [
            "",
            "-a",
            "a-",
            "a b",
            "/a",
            "a/",
            "a/b/c",
            "A.com/x",
            "a..b/x",
            "é",
            &"a".repeat(64),
            &long_prefix,
        ] {
            assert!(!is_label_key(bad), "{bad} should be invalid");
        }
        assert_eq!(
            label_key_errors("/a"),
            vec!["prefix part must be non-empty"]
        );
        let empty_name = label_key_errors("a/");
        assert_eq!(
            empty_name.len(),
            2,
            "apimachinery reports both the emptiness and the regex"
        );
        assert_eq!(empty_name[0], "name part must be non-empty");
        assert_eq!(
            label_key_errors(&"a".repeat(64)),
            vec!["name part must be no more than 63 characters"]
        );
        assert!(
            label_key_errors(&long_prefix)[0].starts_with("prefix part must be no more than 253")
        );
    }

    #[test]
    fn values() {
        for ok in ["", "a", "v1.20", "default-true", "A_b.c-9", &"z".repeat(63)] {
            assert!(is_label_value(ok), "{ok} should be valid");
        }
        for bad in ["-a", "a-", "a b", "a/b", ".", &"z".repeat(64)] {
            assert!(!is_label_value(bad), "{bad} should be invalid");
        }
        assert_eq!(
            label_value_errors(&"z".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
    }
}
