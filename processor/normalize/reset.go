package normalize

import "github.com/crowsnest-siem/crowsnest/schemas"

// Reset zeroes ev for the next record but keeps the backing arrays of its
// slices and the buckets of its maps, so that a goroutine normalizing into one
// Event allocates almost nothing per record. Mappers append from [:0] into
// these fields, and never make two fields share a backing array.
//
// After Reset (and so after the next Normalize) every slice and map of the
// previous event is overwritten: copy whatever must outlive it. Strings are
// never overwritten, so they may be kept.
func Reset(ev *schemas.Event) {
	old := *ev
	*ev = schemas.Event{}

	ev.Tags = old.Tags[:0]
	ev.Labels = clearMap(old.Labels)
	ev.Event.Category = old.Event.Category[:0]
	ev.Event.Type = old.Event.Type[:0]
	ev.Crowsnest.SpoofedFields = old.Crowsnest.SpoofedFields[:0]
	ev.Crowsnest.Alert.EventIDs = old.Crowsnest.Alert.EventIDs[:0]
	ev.Host.IP = old.Host.IP[:0]
	ev.Container.Image.Tag = old.Container.Image.Tag[:0]
	ev.Container.Image.Hash.All = old.Container.Image.Hash.All[:0]
	ev.Container.Labels = clearMap(old.Container.Labels)
	ev.Orchestrator.Resource.Annotation = old.Orchestrator.Resource.Annotation[:0]
	ev.Orchestrator.Resource.Label = old.Orchestrator.Resource.Label[:0]
	ev.Process.Args = old.Process.Args[:0]
	ev.User.Roles = old.User.Roles[:0]
	ev.User.Effective.Roles = old.User.Effective.Roles[:0]
	ev.Related.IP = old.Related.IP[:0]
	ev.Related.User = old.Related.User[:0]
	ev.Related.Hosts = old.Related.Hosts[:0]
	ev.Related.Hash = old.Related.Hash[:0]
	ev.Rule.Author = old.Rule.Author[:0]
	a, oa := &ev.Kubernetes.Audit, &old.Kubernetes.Audit
	a.SourceIPs = oa.SourceIPs[:0]
	a.User.Groups = oa.User.Groups[:0]
	a.Annotations = clearMap(oa.Annotations)
	a.RequestObject = oa.RequestObject[:0]
	a.ResponseObject = oa.ResponseObject[:0]
	p, op := &ev.Kubernetes.PodSpec, &old.Kubernetes.PodSpec
	p.HostPaths = op.HostPaths[:0]
	p.AddedCapabilities = op.AddedCapabilities[:0]
	p.Images = op.Images[:0]
	ev.Falco.OutputFields = clearMap(old.Falco.OutputFields)
}

func clearMap(m map[string]string) map[string]string {
	clear(m)
	return m
}
