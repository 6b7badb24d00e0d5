package chartcheck

import (
	"testing"

	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// TestPodSecurityStandards evaluates every rendered pod with the Pod
// Security admission's own checks: all meet `restricted` except the node
// collector, which fails it on its hostPath volumes and nothing else (the
// README's install notes depend on this).
func TestPodSecurityStandards(t *testing.T) {
	// The two checks a hostPath volume fails: baseline's and restricted's.
	hostPathOnly := map[string]bool{"hostPath volumes": true, "restricted volume types": true}
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	restricted := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			r := decode(t, render(t, values))
			for w, p := range r.pods {
				meta := p.meta
				for _, res := range eval.EvaluatePod(restricted, &meta, &p.spec) {
					if res.Allowed {
						continue
					}
					if p.component == "node-collector" && hostPathOnly[res.ForbiddenReason] {
						continue
					}
					t.Errorf("%s: Pod Security restricted: %s: %s", w, res.ForbiddenReason, res.ForbiddenDetail)
				}
			}
		})
	}
}
