//! Kubernetes versions: what a cluster's `/version` reports, and the bounds addons declare.
//!
//! Distributions decorate `gitVersion` (`v1.27.3-eks-a5565ad`, `v1.28.2+k3s1`,
//! `v1.29.1-gke.1589000`); only `vMAJOR.MINOR.PATCH` is read and the rest must be a
//! pre-release (`-...`) or build (`+...`) suffix. Anything else is an error, never a guess:
//! a wrong version label would silently move addons.

use std::fmt;
use std::str::FromStr;

/// A cluster's Kubernetes version, as reported by its `/version` endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    /// Major version (1 for every Kubernetes so far).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

/// Why a version string was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid Kubernetes version {input:?}: {reason} (expected e.g. v1.20.11, v1.27.3-eks-a5565ad or v1.28.2+k3s1)"
)]
pub struct VersionError {
    /// What was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn err(input: &str, reason: &'static str) -> VersionError {
    VersionError {
        input: input.to_owned(),
        reason,
    }
}

/// A decimal number without sign or leading zeros, as semver wants.
fn number(s: &str, input: &str) -> Result<u32, VersionError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            input,
            "each of major, minor and patch must be a number",
        ));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(err(input, "numbers must not have leading zeros"));
    }
    s.parse().map_err(|_| err(input, "number too large"))
}

impl FromStr for KubeVersion {
    type Err = VersionError;

    /// Parses a `gitVersion`: `v` + `MAJOR.MINOR.PATCH` + optional `-pre` / `+build` suffix.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let rest = input
            .strip_prefix('v')
            .ok_or_else(|| err(input, "must start with 'v'"))?;
        let core_end = rest.find(['-', '+']).unwrap_or(rest.len());
        let (core, suffix) = rest.split_at(core_end);
        if suffix.len() == 1 {
            return Err(err(input, "empty pre-release or build suffix"));
        }
        if !suffix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.'))
        {
            return Err(err(
                input,
                "suffix may only hold letters, digits, '-', '+' and '.'",
            ));
        }
        let mut parts = core.split('.');
        let (Some(ma), Some(mi), Some(pa), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err(input, "expected MAJOR.MINOR.PATCH"));
        };
        Ok(Self {
            major: number(ma, input)?,
            minor: number(mi, input)?,
            patch: number(pa, input)?,
        })
    }
}

impl KubeVersion {
    /// The value of the `kommander.mesosphere.io/kubernetes-version` label: `vMAJOR.MINOR`.
    pub fn label(&self) -> String {
        format!("v{}.{}", self.major, self.minor)
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A bound an addon declares (`minSupportedVersion` / `maxSupportedVersion`): `v1.16`,
/// `v1.16.3`, with or without the `v`. Without a patch it covers the whole minor release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VersionBound {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch, when the bound names one.
    pub patch: Option<u32>,
}

impl FromStr for VersionBound {
    type Err = VersionError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let rest = input.strip_prefix('v').unwrap_or(input);
        let parts: Vec<&str> = rest.split('.').collect();
        match parts.as_slice() {
            [ma, mi] => Ok(Self {
                major: number(ma, input)?,
                minor: number(mi, input)?,
                patch: None,
            }),
            [ma, mi, pa] => Ok(Self {
                major: number(ma, input)?,
                minor: number(mi, input)?,
                patch: Some(number(pa, input)?),
            }),
            _ => Err(err(input, "expected MAJOR.MINOR or MAJOR.MINOR.PATCH")),
        }
    }
}

impl VersionBound {
    /// Whether `v` is at or above this bound.
    pub fn allows_min(&self, v: &KubeVersion) -> bool {
        (v.major, v.minor, v.patch) >= (self.major, self.minor, self.patch.unwrap_or(0))
    }

    /// Whether `v` is at or below this bound (a bound without patch covers all its patches).
    pub fn allows_max(&self, v: &KubeVersion) -> bool {
        match self.patch {
            Some(p) => (v.major, v.minor, v.patch) <= (self.major, self.minor, p),
            None => (v.major, v.minor) <= (self.major, self.minor),
        }
    }
}

impl fmt::Display for VersionBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(p) => write!(f, "v{}.{}.{p}", self.major, self.minor),
            None => write!(f, "v{}.{}", self.major, self.minor),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn distributions() {
        for (s, label) in [
            ("v1.20.11", "v1.20"),
            ("v1.27.3-eks-a5565ad", "v1.27"),
            ("v1.28.2+k3s1", "v1.28"),
            ("v1.29.1-gke.1589000", "v1.29"),
            ("v1.33.0", "v1.33"),
            ("v1.30.0-rc.1+abc", "v1.30"),
        ] {
            assert_eq!(s.parse::<KubeVersion>().expect(s).label(), label);
        }
    }

    #[test]
    fn rejects_guesses() {
        for s in [
            "",
            "1.20.11",
            "v1.20",
            "v1",
            "v1.20.11.4",
            "v1.2x.1",
            "v01.20.1",
            "v1.20.-1",
            "v1.20.1-",
            "v1.20.1 ",
            " v1.20.1",
            "v1.20.1_x",
            "v99999999999.1.1",
            "V1.20.1",
        ] {
            assert!(
                s.parse::<KubeVersion>().is_err(),
                "{s:?} should be rejected"
            );
        }
        let e = "1.20".parse::<KubeVersion>().expect_err("no v");
        assert!(e.to_string().contains("must start with 'v'"), "{e}");
    }

    #[test]
    fn bounds() {
        let v: KubeVersion = "v1.20.11".parse().expect("valid");
        let b = |s: &str| s.parse::<VersionBound>().expect(s);
        assert!(
            b("v1.16").allows_min(&v) && b("v1.20").allows_min(&v) && !b("v1.21").allows_min(&v)
        );
        assert!(
            b("v1.20").allows_max(&v)
                && !b("v1.19").allows_max(&v)
                && !b("v1.20.10").allows_max(&v)
        );
        assert!(
            b("1.20.11").allows_max(&v)
                && b("v1.20.11").allows_min(&v)
                && !b("v1.20.12").allows_min(&v)
        );
        assert!("v1".parse::<VersionBound>().is_err() && "v1.x".parse::<VersionBound>().is_err());
    }

    proptest! {
        /// Any well-formed gitVersion round-trips to its own major.minor, whatever the suffix.
        #[test]
        fn label_is_major_minor(ma in 0u32..100, mi in 0u32..1000, pa in 0u32..1000,
                                suffix in "([-+][a-z0-9]([a-z0-9.-]{0,12}[a-z0-9])?)?") {
            let s = format!("v{ma}.{mi}.{pa}{suffix}");
            let v: KubeVersion = s.parse().map_err(|e: VersionError| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(v.label(), format!("v{ma}.{mi}"));
            prop_assert_eq!((v.major, v.minor, v.patch), (ma, mi, pa));
        }

        /// Parsing never panics, and anything accepted starts with `v` and has a numeric core.
        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            if let Ok(v) = s.parse::<KubeVersion>() {
                let prefix = format!("v{}.{}.{}", v.major, v.minor, v.patch);
                prop_assert!(s.starts_with(&prefix));
            }
        }
    }
}
