// Package semconvtest is an empty stand-in for the contrib module of the same
// path, which the module proxy does not serve at any version.
//
// Only the tests of k8sattributesprocessor import it; the collector never
// does. ocb runs `go mod tidy`, which resolves the imports of dependencies'
// tests too, so builder-config.yaml replaces the module with this directory
// to let tidy finish. Nothing here is compiled into otelcol-netintel.
package semconvtest
