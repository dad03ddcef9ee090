// Package deploy holds what runs otelcol-netintel where users run collectors:
// the Kubernetes DaemonSet and its RBAC (kubernetes/), the gateway collector
// that pairs spans across nodes (gateway/), and the image's default
// configuration (docker/). It has no code; its tests parse every manifest and
// validate every collector configuration with the built distribution.
package deploy
