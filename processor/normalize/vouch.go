package normalize

import (
	"fmt"
	"strings"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// ReasonSpoofed rejects an event that claims what its collector's identity
// cannot vouch for, when vouch.on_spoof is reject.
const ReasonSpoofed Reason = "spoofed_metadata"

// checkIdentity marks, in crowsnest.spoofed_fields, what ev claims beyond
// the identity of the collector that published rec (processor/normalize/
// vouch), or rejects ev when so configured. The collector is the token of
// the raw subject, which NATS permissions bind; never a header.
func (n *Normalizer) checkIdentity(rec *Record, ev *schemas.Event) error {
	if n.vouch.Check(rec.Collector, ev) == 0 || !n.vouch.Rejects() {
		return nil
	}
	return &RejectError{Reason: ReasonSpoofed, Detail: fmt.Sprintf("collector %.64q cannot vouch for %s",
		rec.Collector, strings.Join(ev.Crowsnest.SpoofedFields, ", "))}
}
