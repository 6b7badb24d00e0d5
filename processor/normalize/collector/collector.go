package collector

import (
	"fmt"
	"time"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// Source is the name this mapper is registered under (topology.SourceCollector).
const Source = "collector"

var reasonNotCollector = normalize.NotSource(Source)

// The reasons a gap record gives (collectors/spool).
const (
	reasonSpoolFull    = "spool_full"
	reasonSpoolCorrupt = "spool_corrupt"
)

const (
	ocsfBaseEvent = 0
	ocsfOther     = 99
	ocsfSevMedium = 3
	ecsSevMedium  = 47
)

// Mapper maps gap records. It is stateless and safe for concurrent use.
type Mapper struct{}

var _ normalize.Mapper = (*Mapper)(nil)

// NewFactory registers the mapper under [Source].
func NewFactory() normalize.Factory {
	return normalize.Factory{
		Source: Source,
		New:    func(normalize.Config) (normalize.Mapper, error) { return &Mapper{}, nil },
	}
}

// Map maps one gap record.
func (m *Mapper) Map(rec *normalize.Record, ev *schemas.Event) error {
	root := gjson.Parse(rec.Text())
	if !root.IsObject() {
		return normalize.Reject(reasonNotCollector, "not a JSON object")
	}
	var typ, source, reason, id, first, last gjson.Result
	var records, bytes gjson.Result
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "type":
			typ = v
		case "source":
			source = v
		case "reason":
			reason = v
		case "id":
			id = v
		case "records":
			records = v
		case "bytes":
			bytes = v
		case "first":
			first = v
		case "last":
			last = v
		}
		return true
	})
	if typ.Type != gjson.String || typ.Str != "gap" {
		return normalize.Reject(reasonNotCollector, "type %.32q is not a gap record", typ.Raw)
	}
	if reason.Str != reasonSpoolFull && reason.Str != reasonSpoolCorrupt {
		return normalize.Reject(reasonNotCollector, "gap reason %.32q is not spool_full or spool_corrupt", reason.Raw)
	}
	n, err := count("records", records)
	if err != nil {
		return err
	}
	b, err := count("bytes", bytes)
	if err != nil {
		return err
	}
	start, err := timestamp("first", first)
	if err != nil {
		return err
	}
	end, err := timestamp("last", last)
	if err != nil {
		return err
	}
	if end.Before(start) {
		return normalize.Reject(normalize.ReasonMissingField, "gap ends (%s) before it starts (%s)", last.Str, first.Str)
	}
	if source.Exists() && (source.Type != gjson.String || !topology.ValidSource(source.Str)) {
		return normalize.Reject(reasonNotCollector, "gap source %.32q is not a source name", source.Raw)
	}

	e := &ev.Event
	e.ID = id.Str // the Normalizer replaces an id that is not header-safe
	e.Kind = "metric"
	e.Action = "gap"
	e.Category = append(e.Category[:0], "host")
	e.Type = append(e.Type[:0], "info")
	e.Outcome = "failure"
	e.Reason = reason.Str
	e.Start, e.End = start, end
	e.Severity = ecsSevMedium
	ev.Timestamp = end
	g := &ev.Crowsnest.Gap
	g.Source, g.Records, g.Bytes = source.Str, n, b
	ev.Host.Name = rec.Node

	what := source.Str + " records"
	if source.Str == "" {
		what = "records of an unknown source"
	}
	switch reason.Str {
	case reasonSpoolFull:
		ev.Message = fmt.Sprintf("collector %s on %s dropped %d %s between %s and %s: its spool was full and its full_policy is drop",
			rec.Collector, rec.Node, n, what, first.Str, last.Str)
	default:
		ev.Message = fmt.Sprintf("collector %s on %s lost %d bytes of %s to spool corruption (found %s)",
			rec.Collector, rec.Node, b, what, last.Str)
	}
	o := &ev.OCSF
	o.ClassUID, o.CategoryUID, o.ActivityID, o.SeverityID = ocsfBaseEvent, 0, ocsfOther, ocsfSevMedium
	return nil
}

func count(name string, v gjson.Result) (int64, error) {
	if v.Type != gjson.Number || v.Num < 0 || v.Num > 1<<53 || v.Num != float64(int64(v.Num)) {
		return 0, normalize.Reject(normalize.ReasonMissingField, "gap %s %.32q is not a count", name, v.Raw)
	}
	return int64(v.Num), nil
}

func timestamp(name string, v gjson.Result) (time.Time, error) {
	if v.Type != gjson.String {
		return time.Time{}, normalize.Reject(normalize.ReasonMissingField, "gap %s is missing", name)
	}
	t, err := time.Parse(time.RFC3339Nano, v.Str)
	if err != nil {
		return time.Time{}, normalize.Reject(normalize.ReasonMissingField, "gap %s %.40q is not an RFC 3339 time", name, v.Str)
	}
	return t.UTC(), nil
}
