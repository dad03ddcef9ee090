package identity

import "strings"

// Kubernetes builds the names of the pods its controllers create from the workload's name
// (k8s.io/apimachinery/pkg/util/rand, names.SimpleNameGenerator, controller.ComputeHash):
//
//	Deployment   <deployment>-<pod-template-hash>-<suffix>   checkout-7d9f8b6c5-x2k4q
//	ReplicaSet,
//	DaemonSet,
//	Job          <name>-<suffix>                             kube-proxy-s9vzj
//	Indexed Job  <job>-<index>-<suffix>                      render-3-b26vc
//	CronJob      <cronjob>-<scheduled minute>-<suffix>       hello-28290331-jsx77
//	StatefulSet  <statefulset>-<ordinal>                     prometheus-k8s-0
//
// The suffix is five characters of the alphabet below. The pod-template-hash encodes the
// decimal digits of a 32-bit FNV hash one by one into that alphabet, so it only ever uses
// the ten characters of templateHashChars.
const (
	generatedChars    = "bcdfghjklmnpqrstvwxz2456789"
	templateHashChars = "bcdf456789"
	suffixLen         = 5
	// A template hash has as many characters as the decimal hash has digits: 10 for most,
	// rarely fewer than 7. Requiring 6 keeps short words of the alphabet ("db") in names.
	minTemplateHash, maxTemplateHash = 6, 10
	// StatefulSet ordinals: a five-digit one would need 10000 replicas; five generated
	// characters can all be digits, and then they are the suffix.
	maxOrdinalDigits = 4
	// A CronJob names its Jobs by the scheduled time in minutes since the epoch (8 digits
	// until the year 2160; Kubernetes before 1.21 wrote seconds, 10 digits).
	minScheduleDigits = 8
)

// workloadName is the service name of a pod: the name of the workload that made it, with
// what its controller appended taken off. A pod no controller named keeps its own name.
// k8s_attributes downstream adds the owner references themselves (k8s.deployment.name, …).
func workloadName(podName string) string {
	segs := strings.Split(podName, "-")
	n := len(segs)
	if n < 2 || segs[0] == "" {
		return podName
	}
	last := segs[n-1]
	switch {
	case isGenerated(last):
		rest := segs[:n-1]
		lastIs := func(ok func(string) bool) bool { return len(rest) >= 2 && ok(rest[len(rest)-1]) }
		drop := func() { rest = rest[:len(rest)-1] }
		switch {
		case lastIs(isTemplateHash): // Deployment
			drop()
		case lastIs(func(s string) bool { return isDigits(s, 0) }): // a Job's index, or a CronJob's schedule
			drop()
			if lastIs(func(s string) bool { return s == "" }) {
				drop() // "<job>--1-<suffix>": the index -1 that some versions write for non-indexed Jobs
			}
			if lastIs(func(s string) bool { return isDigits(s, 0) && len(s) >= minScheduleDigits }) {
				drop() // the CronJob schedule before that index
			}
		}
		return strings.Join(rest, "-")
	case isDigits(last, maxOrdinalDigits) && (last == "0" || last[0] != '0'):
		return strings.Join(segs[:n-1], "-")
	}
	return podName
}

func isGenerated(s string) bool { return len(s) == suffixLen && onlyOf(s, generatedChars) }

func isTemplateHash(s string) bool {
	return len(s) >= minTemplateHash && len(s) <= maxTemplateHash && onlyOf(s, templateHashChars)
}

// isDigits: s is a decimal number of at most maxLen digits (any length when maxLen is 0).
func isDigits(s string, maxLen int) bool {
	if s == "" || (maxLen > 0 && len(s) > maxLen) {
		return false
	}
	return onlyOf(s, "0123456789")
}

func onlyOf(s, chars string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(chars, s[i]) < 0 {
			return false
		}
	}
	return true
}
