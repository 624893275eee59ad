//! The article's placement rules, end to end through the core: fleet facts → labels →
//! placement → explain, on the shipped examples.

use flotilla_core::labels::{CLUSTER_TYPE, FEDERATION_ENABLED, KUBERNETES_VERSION};
use flotilla_core::placement::PlacementIndex;
use flotilla_tests::{article_catalog, article_fleet};

fn placed(fleet: &flotilla_core::fleet::Fleet, cluster: &str, addon: &str) -> bool {
    let catalog = article_catalog();
    let clusters = fleet.resolve(&catalog).unwrap_or_else(|e| panic!("{e}"));
    let c = clusters
        .iter()
        .find(|c| c.view.name == cluster)
        .unwrap_or_else(|| panic!("{cluster}"));
    let i = catalog.find(addon).unwrap_or_else(|| panic!("{addon}"));
    let index = PlacementIndex::new(&catalog);
    index.is_placed(&index.row_of(&c.view.labels), cluster, i)
}

#[test]
fn article_labels_on_alpha() {
    let catalog = article_catalog();
    let clusters = article_fleet()
        .resolve(&catalog)
        .unwrap_or_else(|e| panic!("{e}"));
    let alpha = &clusters[0].view.labels;
    assert_eq!(alpha[CLUSTER_TYPE], "Konvoy");
    assert_eq!(alpha[KUBERNETES_VERSION], "v1.20");
    assert_eq!(alpha[FEDERATION_ENABLED], "true");
    // Every federate-* label of the article, with its default.
    for (key, value) in [
        ("cert-manager", "true"), // the user's choice, kept
        ("elasticsearch", "default-false"),
        ("elasticsearch-curator", "default-false"),
        ("elasticsearchexporter", "default-false"),
        ("fluentbit", "default-false"),
        ("ingress-overrides", "default-true"),
        ("kibana", "default-false"),
        ("kube-oidc-proxy", "default-true"),
        ("kubeaddons", "default-true"),
        ("kubecost", "default-true"),
        ("prometheus", "default-true"),
        ("prometheusadapter", "default-true"),
        ("reloader", "default-true"),
        ("traefik", "default-true"),
        ("traefik-forward-auth", "default-true"),
    ] {
        assert_eq!(
            alpha[&format!("kommander.mesosphere.io/federate-{key}")],
            value,
            "{key}"
        );
    }
}

#[test]
fn konvoy_never_gets_cert_manager() {
    let fleet = article_fleet();
    assert_eq!(
        fleet.clusters[0].labels["kommander.mesosphere.io/federate-cert-manager"],
        "true"
    );
    assert!(!placed(&fleet, "alpha", "cert-manager"));
    assert!(placed(&fleet, "beta", "cert-manager"));
}

#[test]
fn upgrade_out_of_range_loses_the_addon() {
    let mut fleet = article_fleet();
    assert!(placed(&fleet, "beta", "cert-manager"));
    fleet.clusters[1].kubernetes_version = "v1.21.2-eks-1".into();
    assert!(
        !placed(&fleet, "beta", "cert-manager"),
        "cert-manager supports v1.16 to v1.20 only"
    );
    assert!(placed(&fleet, "beta", "traefik"), "traefik supports v1.21");
}

#[test]
fn opt_in_and_federation_disabled() {
    let mut fleet = article_fleet();
    assert!(!placed(&fleet, "gamma", "kubeaddons/elasticsearch"));
    fleet.clusters[2].labels.insert(
        "kommander.mesosphere.io/federate-elasticsearch".into(),
        "true".into(),
    );
    assert!(placed(&fleet, "gamma", "kubeaddons/elasticsearch"));
    fleet.clusters[2]
        .labels
        .insert(FEDERATION_ENABLED.into(), "false".into());
    let catalog = article_catalog();
    for a in catalog.addons() {
        assert!(
            !placed(&fleet, "gamma", &a.id.to_string()),
            "{} must not be placed",
            a.id
        );
    }
}

#[test]
fn minors_shift_only_kubernetes_versions() {
    use flotilla_tests::shift_minors;
    assert_eq!(
        shift_minors("v1.20 v1.21.14-gke.700 apiVersion: v1 v1.x 0.10.1-5", 15),
        "v1.35 v1.36.14-gke.700 apiVersion: v1 v1.x 0.10.1-5"
    );
}

/// The catalog the real-mode tests use is the article's, moved to today's versions, and it
/// places exactly the same addons on the same (equally moved) fleet.
#[test]
fn todays_catalog_is_the_articles_shifted() {
    use flotilla_tests::{TODAY_SHIFT, examples, shift_minors, today_catalog_text};
    let path = examples().join("catalog-v1.36.yaml");
    let want = today_catalog_text();
    if std::env::var_os("FLOTILLA_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap_or_else(|e| panic!("{e}"));
    }
    let got = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        got == want,
        "{} is stale: regenerate with FLOTILLA_BLESS=1 cargo test -p flotilla-tests --test article",
        path.display()
    );

    let (objects, errors) = flotilla_core::yaml::parse_catalog(&got, "catalog-v1.36.yaml");
    assert!(errors.is_empty(), "{errors:?}");
    let today = flotilla_core::catalog::Catalog::new(
        objects
            .iter()
            .map(|o| {
                flotilla_core::catalog::CatalogAddon::compile(&o.value)
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let then = article_catalog();
    let fleet = article_fleet();
    let mut moved = fleet.clone();
    for c in &mut moved.clusters {
        c.kubernetes_version = shift_minors(&c.kubernetes_version, TODAY_SHIFT);
    }
    let (a, b) = (
        fleet.resolve(&then).unwrap_or_else(|e| panic!("{e}")),
        moved.resolve(&today).unwrap_or_else(|e| panic!("{e}")),
    );
    let (ia, ib) = (PlacementIndex::new(&then), PlacementIndex::new(&today));
    let mut placed_pairs = 0;
    for (ca, cb) in a.iter().zip(&b) {
        let (ra, rb) = (ia.row_of(&ca.view.labels), ib.row_of(&cb.view.labels));
        for i in 0..then.addons().len() {
            let p = ia.is_placed(&ra, &ca.view.name, i);
            assert_eq!(
                p,
                ib.is_placed(&rb, &cb.view.name, i),
                "{} {}",
                ca.view.name,
                then.addons()[i].id
            );
            placed_pairs += usize::from(p);
        }
    }
    assert!(placed_pairs > 10, "the fleet places addons at all");
}
