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
	// Keep the slices and maps (not a copy of the whole 2 KB struct), zero
	// everything, put them back truncated. A field added to the registry is
	// zeroed by the assignment; TestResetCoversEverySlice checks that.
	a, p := &ev.Kubernetes.Audit, &ev.Kubernetes.PodSpec
	var (
		tags        = ev.Tags[:0]
		labels      = clearMap(ev.Labels)
		category    = ev.Event.Category[:0]
		types       = ev.Event.Type[:0]
		spoofed     = ev.Crowsnest.SpoofedFields[:0]
		eventIDs    = ev.Crowsnest.Alert.EventIDs[:0]
		hostIP      = ev.Host.IP[:0]
		imageTag    = ev.Container.Image.Tag[:0]
		imageHash   = ev.Container.Image.Hash.All[:0]
		ctrLabels   = clearMap(ev.Container.Labels)
		annotation  = ev.Orchestrator.Resource.Annotation[:0]
		label       = ev.Orchestrator.Resource.Label[:0]
		args        = ev.Process.Args[:0]
		roles       = ev.User.Roles[:0]
		effRoles    = ev.User.Effective.Roles[:0]
		relIP       = ev.Related.IP[:0]
		relUser     = ev.Related.User[:0]
		relHosts    = ev.Related.Hosts[:0]
		relHash     = ev.Related.Hash[:0]
		authors     = ev.Rule.Author[:0]
		sourceIPs   = a.SourceIPs[:0]
		groups      = a.User.Groups[:0]
		annotations = clearMap(a.Annotations)
		reqObj      = a.RequestObject[:0]
		respObj     = a.ResponseObject[:0]
		hostPaths   = p.HostPaths[:0]
		caps        = p.AddedCapabilities[:0]
		images      = p.Images[:0]
		output      = clearMap(ev.Falco.OutputFields)
		recordTypes = ev.Auditd.RecordTypes[:0]
		auditData   = clearMap(ev.Auditd.Data)
		pathNames   = ev.Auditd.Paths.Name[:0]
		nameTypes   = ev.Auditd.Paths.Nametype[:0]
	)
	*ev = schemas.Event{}
	ev.Tags, ev.Labels = tags, labels
	ev.Event.Category, ev.Event.Type = category, types
	ev.Crowsnest.SpoofedFields, ev.Crowsnest.Alert.EventIDs = spoofed, eventIDs
	ev.Host.IP = hostIP
	ev.Container.Image.Tag, ev.Container.Image.Hash.All, ev.Container.Labels = imageTag, imageHash, ctrLabels
	ev.Orchestrator.Resource.Annotation, ev.Orchestrator.Resource.Label = annotation, label
	ev.Process.Args = args
	ev.User.Roles, ev.User.Effective.Roles = roles, effRoles
	ev.Related.IP, ev.Related.User, ev.Related.Hosts, ev.Related.Hash = relIP, relUser, relHosts, relHash
	ev.Rule.Author = authors
	a.SourceIPs, a.User.Groups, a.Annotations, a.RequestObject, a.ResponseObject = sourceIPs, groups, annotations, reqObj, respObj
	p.HostPaths, p.AddedCapabilities, p.Images = hostPaths, caps, images
	ev.Falco.OutputFields = output
	ev.Auditd.RecordTypes, ev.Auditd.Data = recordTypes, auditData
	ev.Auditd.Paths.Name, ev.Auditd.Paths.Nametype = pathNames, nameTypes
}

func clearMap(m map[string]string) map[string]string {
	clear(m)
	return m
}
