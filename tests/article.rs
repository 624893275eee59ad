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
