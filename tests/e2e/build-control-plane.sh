#!/usr/bin/env bash
# Builds a real Kubernetes control plane (kube-apiserver, kubectl, etcd) from the Go module
# proxy, since no release binaries or images can be downloaded here. Cached under
# ~/.cache/flotilla/ keyed by version: only the first run pays (~10-20 min on 2 cores).
# Prints the directory holding the binaries.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
STAGING_VERSION=${STAGING_VERSION:-v0.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.17}
OUT=${FLOTILLA_CACHE:-$HOME/.cache/flotilla}/control-plane-k8s-$K8S_VERSION-etcd-$ETCD_VERSION

if [[ -x $OUT/kube-apiserver && -x $OUT/kubectl && -x $OUT/etcd ]]; then
  echo "$OUT"
  exit 0
fi
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CGO_ENABLED=0 GOFLAGS=-mod=mod

staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
  cri-client cri-streaming csi-translation-lib dynamic-resource-allocation endpointslice externaljwt
  kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller streaming)

# kube-apiserver and kubectl: k8s.io/kubernetes in a wrapper module whose replaces point each
# staging module at its published version.
mkdir "$work/k8s"
{
  echo "module flotilla.local/control-plane"
  echo
  echo "go 1.26"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  for m in "${staging[@]}"; do echo "	k8s.io/$m => k8s.io/$m $STAGING_VERSION"; done
  echo ")"
} > "$work/k8s/go.mod"
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
(
  cd "$work/k8s"
  go build -trimpath -ldflags "$ldflags" -o "$OUT/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
  go build -trimpath -ldflags "$ldflags" -o "$OUT/kubectl" k8s.io/kubernetes/cmd/kubectl
) >&2

# etcd: the server module's main package, in its own wrapper module.
mkdir "$work/etcd"
printf 'module flotilla.local/etcd\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > "$work/etcd/go.mod"
(cd "$work/etcd" && go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3) >&2

"$OUT/kube-apiserver" --version >&2
echo "$OUT"
