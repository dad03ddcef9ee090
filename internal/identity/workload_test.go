package identity

import "testing"

// TestWorkloadName runs the pod-name rules on names of real pods, as `kubectl get pods`
// printed them in public cluster write-ups and the Kubernetes documentation, one group per
// controller kind.
func TestWorkloadName(t *testing.T) {
	tests := []struct {
		kind, pod, want string
	}{
		// Deployment: <deployment>-<pod-template-hash>-<suffix>.
		{"Deployment", "coredns-5dd5756b68-q4x8z", "coredns"},
		{"Deployment", "calico-kube-controllers-658d97c59c-hq87h", "calico-kube-controllers"},
		{"Deployment", "kube-state-metrics-bdb774b4d-rb8fz", "kube-state-metrics"},
		{"Deployment", "grafana-9b8b4b9d-sx98f", "grafana"},
		{"Deployment", "prometheus-adapter-5b8db7955f-jjrsm", "prometheus-adapter"},
		{"Deployment", "vllm-openai-767b477b77-2jm4v", "vllm-openai"},
		{"Deployment", "meta-llama3-8b-instruct-db9d899fd-mfmq2", "meta-llama3-8b-instruct"},
		{"Deployment", "notification-manager-deployment-5d97567d97-gbgjr", "notification-manager-deployment"},
		{"Deployment", "checkout-7d9f8b6c5-x2k4q", "checkout"},
		// StatefulSet: <statefulset>-<ordinal>.
		{"StatefulSet", "prometheus-k8s-0", "prometheus-k8s"},
		{"StatefulSet", "alertmanager-main-2", "alertmanager-main"},
		{"StatefulSet", "hippo-instance1-crq2-0", "hippo-instance1-crq2"},
		{"StatefulSet", "snapshot-controller-0", "snapshot-controller"},
		{"StatefulSet", "web-12", "web"},
		// DaemonSet: <daemonset>-<suffix>.
		{"DaemonSet", "kube-proxy-s9vzj", "kube-proxy"},
		{"DaemonSet", "kube-flannel-ds-hcxwn", "kube-flannel-ds"},
		{"DaemonSet", "calico-node-ns7q7", "calico-node"},
		{"DaemonSet", "csi-node-driver-9qn4m", "csi-node-driver"},
		{"DaemonSet", "node-exporter-8jj79", "node-exporter"},
		// Job: <job>-<suffix>; Indexed Job: <job>-<index>-<suffix>.
		{"Job", "aodh-db-init-dvf8t", "aodh-db-init"},
		{"Job", "model-eval-2sxg2", "model-eval"},
		{"Job", "meta-llama3-8b-instruct-job-xktnk", "meta-llama3-8b-instruct-job"},
		{"Job", "ingress-nginx-admission-create--1-rwzjr", "ingress-nginx-admission-create"},
		{"Indexed Job", "job-backoff-limit-per-index-execute-all-0-b26vc", "job-backoff-limit-per-index-execute-all"},
		{"Indexed Job", "job-backoff-limit-per-index-execute-all-2-c66hg", "job-backoff-limit-per-index-execute-all"},
		// CronJob: <cronjob>-<scheduled minute>-<suffix> (seconds before Kubernetes 1.21).
		{"CronJob", "hello-28290331-jsx77", "hello"},
		{"CronJob", "hello-27324671--1-lqnpt", "hello"},
		{"CronJob", "hello-1653361980-jhxhg", "hello"},
		{"CronJob", "hello-1625713980-x2999", "hello"},
		// Bare pods keep their names, as do static pods (named after their node) that do not
		// end like a generated name.
		{"Pod", "nginx", "nginx"},
		{"Pod", "my-debug-pod", "my-debug-pod"},
		{"Pod", "verify-streaming-chat", "verify-streaming-chat"},
		{"Pod", "etcd-minikube", "etcd-minikube"},
		{"Pod", "kube-apiserver-docker-desktop", "kube-apiserver-docker-desktop"},
		// Short words of the hash alphabet stay: "db" is no template hash.
		{"DaemonSet", "orders-db-x7k9p", "orders-db"},
		// Not a pod (a container outside Kubernetes has no pod name).
		{"none", "", ""},
		{"none", "-x7k9p", "-x7k9p"},
	}
	for _, tt := range tests {
		if got := workloadName(tt.pod); got != tt.want {
			t.Errorf("%s pod %q: workload %q, want %q", tt.kind, tt.pod, got, tt.want)
		}
	}
}
