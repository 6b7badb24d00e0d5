package schemas_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// inDoc reports whether the encoded document holds the dotted name.
func inDoc(t *testing.T, doc []byte, name string) bool {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	for _, seg := range strings.Split(name, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = m[seg]; !ok {
			return false
		}
	}
	return true
}

// goPath walks the Event struct by the JSON tags of a dotted registry name.
// Reflection is fine here: the test checks the generated code against the
// struct layout, which is what the generator promises to follow.
func goPath(t *testing.T, v reflect.Value, name string) reflect.Value {
	t.Helper()
	for _, seg := range strings.Split(name, ".") {
		found := false
		for i := 0; i < v.NumField(); i++ {
			tag := strings.Split(v.Type().Field(i).Tag.Get("json"), ",")[0]
			if tag == seg {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			t.Fatalf("%s: no struct field for %q", name, seg)
		}
	}
	return v
}

// setSample puts a non-zero value of the field's type into v.
func setSample(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Int64, reflect.Int32:
		v.SetInt(7)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		setSample(p.Elem())
		v.Set(p)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 { // json.RawMessage
			v.SetBytes([]byte(`{"a":1}`))
			return
		}
		s := reflect.MakeSlice(v.Type(), 1, 1)
		setSample(s.Index(0))
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		m.SetMapIndex(reflect.ValueOf("k"), reflect.ValueOf("v"))
		v.Set(m)
	case reflect.Struct: // time.Time
		v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
	}
}

// present reports what the accessor says about the field's presence.
func present(t *testing.T, g schemas.FieldGetter, e *schemas.Event) bool {
	t.Helper()
	switch g.Kind {
	case schemas.FieldString:
		return g.String(e) != ""
	case schemas.FieldStrings:
		return len(g.Strings(e)) > 0
	case schemas.FieldInt:
		_, ok := g.Int(e)
		return ok
	case schemas.FieldBool:
		_, ok := g.Bool(e)
		return ok
	case schemas.FieldTime:
		return !g.Time(e).IsZero()
	case schemas.FieldMap:
		return len(g.Map(e)) > 0
	case schemas.FieldJSON:
		return len(g.JSON(e)) > 0
	}
	t.Fatalf("%s: kind %v", g.Name, g.Kind)
	return false
}

// TestEventFieldCoversTheRegistry: every event field resolves, reads the
// struct field of its name, and agrees with the JSON encoder on presence.
func TestEventFieldCoversTheRegistry(t *testing.T) {
	for _, f := range schemas.Fields() {
		g, ok := schemas.EventField(f.Name)
		if f.AlertOnly {
			if ok {
				t.Errorf("%s: alert-only field resolves as an event field", f.Name)
			}
			continue
		}
		if !ok {
			t.Errorf("%s: no accessor", f.Name)
			continue
		}
		if g.Name != f.Name || g.Type != f.Type {
			t.Errorf("%s: getter names %s/%s", f.Name, g.Name, g.Type)
		}
		var e schemas.Event
		if present(t, g, &e) {
			t.Errorf("%s: present on a zero event", f.Name)
		}
		setSample(goPath(t, reflect.ValueOf(&e).Elem(), f.Name))
		if !present(t, g, &e) {
			t.Errorf("%s: set in the struct but the accessor says absent", f.Name)
		}
		doc := e.AppendJSON(nil)
		if !inDoc(t, doc, f.Name) {
			t.Errorf("%s: accessor says present, encoder omitted it: %s", f.Name, doc)
		}
	}
	if _, ok := schemas.EventField("no.such.field"); ok {
		t.Error("unknown name resolved")
	}
}

func TestEventFieldValues(t *testing.T) {
	trusted := false
	e := schemas.Event{}
	e.Kubernetes.Audit.ObjectRef.Resource = "pods"
	e.Kubernetes.Audit.ResponseStatus.Code = 403
	e.Kubernetes.PodSpec.HostPaths = []string{"/", "/etc"}
	e.Crowsnest.Image.Trusted = &trusted
	e.Kubernetes.Audit.RequestObject = json.RawMessage(`{"kind":"Pod"}`)

	get := func(name string) schemas.FieldGetter {
		g, ok := schemas.EventField(name)
		if !ok {
			t.Fatalf("%s: not found", name)
		}
		return g
	}
	if v := get("kubernetes.audit.objectRef.resource").String(&e); v != "pods" {
		t.Errorf("resource %q", v)
	}
	if v, ok := get("kubernetes.audit.responseStatus.code").Int(&e); !ok || v != 403 {
		t.Errorf("code %d %v", v, ok)
	}
	if v := get("kubernetes.pod_spec.host_paths").Strings(&e); len(v) != 2 || v[1] != "/etc" {
		t.Errorf("host paths %q", v)
	}
	// A nullable false is present: "the image is not trusted" is a fact.
	if v, ok := get("crowsnest.image.trusted").Bool(&e); !ok || v {
		t.Errorf("trusted %v %v", v, ok)
	}
	if _, ok := get("kubernetes.pod_spec.privileged").Bool(&e); ok {
		t.Error("unset nullable bool reads as present")
	}
	if v := get("kubernetes.audit.requestObject").JSON(&e); string(v) != `{"kind":"Pod"}` {
		t.Errorf("request object %s", v)
	}
}

func TestAlertSetEvent(t *testing.T) {
	var e schemas.Event
	e.Event.ID = "ev-1"
	e.Container.ID = "c1"
	e.Kubernetes.PodSpec.Images = []string{"alpine"}
	var a schemas.Alert
	a.Threat.Technique.ID = []string{"T1609"}
	a.SetEvent(&e)
	if a.Event.ID != "ev-1" || a.Container.ID != "c1" || a.Kubernetes.PodSpec.Images[0] != "alpine" || a.Threat.Technique.ID[0] != "T1609" {
		t.Fatalf("%+v", a)
	}
}

func BenchmarkEventField(b *testing.B) {
	var e schemas.Event
	e.Kubernetes.Audit.ObjectRef.Resource = "pods"
	g, _ := schemas.EventField("kubernetes.audit.objectRef.resource")
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n += len(g.String(&e))
	}
	if n == 0 {
		b.Fatal("no value")
	}
}
