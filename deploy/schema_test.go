package deploy

import (
	"testing"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// schemaFor returns an empty Kubernetes API object of the kind, from the
// upstream API types, so that strict decoding checks field names and value
// types (quantities, int-or-string ports) the way the API server would.
func schemaFor(kind string) any {
	switch kind {
	case "Namespace":
		return &corev1.Namespace{}
	case "ServiceAccount":
		return &corev1.ServiceAccount{}
	case "ConfigMap":
		return &corev1.ConfigMap{}
	case "Service":
		return &corev1.Service{}
	case "DaemonSet":
		return &appsv1.DaemonSet{}
	case "Deployment":
		return &appsv1.Deployment{}
	case "ClusterRole":
		return &rbacv1.ClusterRole{}
	case "ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}
	}
	return nil
}

// TestManifestsDecodeStrictlyIntoTheKubernetesAPITypes catches what the
// partial structs of the other tests ignore: a misspelt field
// (mountPropogation), a value of the wrong type, a resource quantity that does
// not parse. Patches decode into their kind too: a strategic-merge patch uses
// the object's own field names.
func TestManifestsDecodeStrictlyIntoTheKubernetesAPITypes(t *testing.T) {
	checked := 0
	for _, d := range readDocuments(t, ".") {
		if d.meta.Kind == "" {
			continue // a collector config
		}
		obj := schemaFor(d.meta.Kind)
		if obj == nil {
			t.Errorf("%s: no API type for kind %q", d, d.meta.Kind)
			continue
		}
		raw, err := yaml.Marshal(d.node)
		if err != nil {
			t.Fatal(err)
		}
		if err := sigsyaml.UnmarshalStrict(raw, obj); err != nil {
			t.Errorf("%s: %v", d, err)
			continue
		}
		checked++
		if ds, ok := obj.(*appsv1.DaemonSet); ok && !d.isPatch() {
			for _, c := range ds.Spec.Template.Spec.Containers {
				limit, request := c.Resources.Limits.Memory(), c.Resources.Requests.Memory()
				if limit.Cmp(*request) < 0 {
					t.Errorf("%s: memory limit %s below request %s", d, limit, request)
				}
			}
		}
	}
	if checked < 10 {
		t.Errorf("strictly decoded %d objects, want every manifest (at least 10)", checked)
	}
}

func TestStrictDecodingRejectsAMisspeltField(t *testing.T) {
	const manifest = `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: x}
spec:
  template:
    spec:
      containers:
        - name: c
          volumeMounts:
            - name: tracefs
              mountPath: /sys/kernel/tracing
              mountPropogation: Bidirectional
`
	err := sigsyaml.UnmarshalStrict([]byte(manifest), &appsv1.DaemonSet{})
	if err == nil {
		t.Fatal("a misspelt field decoded without error")
	}
}
