// Data, not a program: Gateway API's standard-channel CRDs (config/crd/standard/*.yaml of the
// module), copied by scripts/install-tools (tool gateway-api-crds) into
// ${DCOPS_CACHE:-~/.cache/dcops}/tools/data/gateway-api-crds; the lab installs them in a cluster
// whose exposure is a Gateway (infra/lab/gatewayapi.py). v1.6.3: the newest release whose go.mod
// accepts Go 1.26 (v1.7.0 requires Go 1.27). go.sum pins the module zip's hash.
module dcops.local/tools/gateway-api

go 1.26.0

require sigs.k8s.io/gateway-api v1.6.3
