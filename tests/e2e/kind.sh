#!/usr/bin/env bash
# Runs the real-mode end-to-end tests against kind clusters instead of local control planes,
# for people with Docker. Each test creates its own kind clusters (one per API server the
# local provider would start) and deletes them when it ends, also on failure.
#
#   tests/e2e/kind.sh                       # all e2e tests
#   KIND_NODE_IMAGE=kindest/node:v1.36.x tests/e2e/kind.sh --test e2e_fleet
#
# The tests expect Kubernetes v1.36 API servers (set KIND_NODE_IMAGE if your kind's default
# differs). The controllers run as local processes against the clusters, exactly as with the
# local provider; the flotilla image is built and loaded into every cluster too, so that the
# Deployments `install` prints reference an image the nodes have.
set -euo pipefail
cd "$(dirname "$0")/../.."

for tool in docker kind go; do
  command -v "$tool" >/dev/null || { echo "kind.sh needs $tool on PATH" >&2; exit 1; }
done

image=flotilla:e2e
docker build -t "$image" .
# kubectl (and, unused here, the local control plane) from the same cache as CI.
bash tests/e2e/build-control-plane.sh >/dev/null

export FLOTILLA_E2E_PROVIDER=kind FLOTILLA_E2E_KIND_LOAD=$image
cargo build -p flotilla-manager -p flotilla-agent
tests=("$@")
[[ ${#tests[@]} -gt 0 ]] || tests=(--test e2e_local --test e2e_fleet)
# One test at a time: every test runs up to four clusters.
cargo test -p flotilla-tests "${tests[@]}" -- --test-threads=1
