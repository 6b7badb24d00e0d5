package elasticsearch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// The Kibana saved objects in deploy/kibana are NDJSON Kibana imports: one
// object per line with a type, id and attributes; every reference resolves
// to an object in the file; the embedded JSON strings parse; every field a
// data view, search or query names is mapped by the generated template of
// the data view's streams.
func TestKibanaSavedObjects(t *testing.T) {
	data, err := os.ReadFile("../../deploy/kibana/crowsnest.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	ts, err := loadTemplates()
	if err != nil {
		t.Fatal(err)
	}
	mapped := map[string]map[string]string{} // data view title → field → type
	for _, k := range sink.Kinds() {
		fields := map[string]string{}
		var walk func(prefix string, props gjson.Result)
		walk = func(prefix string, props gjson.Result) {
			props.ForEach(func(name, v gjson.Result) bool {
				if sub := v.Get("properties"); sub.Exists() {
					walk(prefix+name.String()+".", sub)
				} else {
					fields[prefix+name.String()] = v.Get("type").String()
				}
				return true
			})
		}
		walk("", gjson.GetBytes(ts[k].mappings, "properties"))
		mapped[ts[k].prefix+"-*"] = fields
	}

	type object struct {
		ID         string          `json:"id"`
		Type       string          `json:"type"`
		Attributes json.RawMessage `json:"attributes"`
		References []struct {
			ID, Name, Type string
		} `json:"references"`
	}
	objects := map[string]object{} // type/id → object
	var order []object
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			t.Errorf("line %d: empty", n)
			continue
		}
		var o object
		dec := json.NewDecoder(bytes.NewReader(line))
		if err := dec.Decode(&o); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		if dec.More() {
			t.Errorf("line %d: more than one JSON value", n)
		}
		if o.ID == "" || o.Type == "" || len(o.Attributes) == 0 {
			t.Errorf("line %d: id, type and attributes are required", n)
		}
		key := o.Type + "/" + o.ID
		if _, dup := objects[key]; dup {
			t.Errorf("line %d: %s twice", n, key)
		}
		objects[key] = o
		order = append(order, o)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}

	want := map[string]int{"index-pattern": 2, "search": 1, "dashboard": 1}
	got := map[string]int{}
	for _, o := range order {
		got[o.Type]++
	}
	for typ, n := range want {
		if got[typ] < n {
			t.Errorf("%d objects of type %s, want at least %d", got[typ], typ, n)
		}
	}

	fieldRE := regexp.MustCompile(`([@a-zA-Z_][a-zA-Z0-9_.]*)\s*:`)
	viewOf := func(o object) map[string]string {
		for _, r := range o.References {
			if r.Type == "index-pattern" {
				return mapped[gjson.GetBytes(objects["index-pattern/"+r.ID].Attributes, "title").String()]
			}
		}
		return nil
	}
	for _, o := range order {
		for _, r := range o.References {
			if _, ok := objects[r.Type+"/"+r.ID]; !ok {
				t.Errorf("%s/%s: reference %s to %s/%s is not in the file", o.Type, o.ID, r.Name, r.Type, r.ID)
			}
		}
		attrs := gjson.ParseBytes(o.Attributes)
		for _, embedded := range []string{"kibanaSavedObjectMeta.searchSourceJSON", "panelsJSON", "optionsJSON"} {
			if v := attrs.Get(embedded); v.Exists() && !json.Valid([]byte(v.String())) {
				t.Errorf("%s/%s: %s is not JSON", o.Type, o.ID, embedded)
			}
		}
		switch o.Type {
		case "index-pattern":
			fields := mapped[attrs.Get("title").String()]
			if fields == nil {
				t.Errorf("data view %s: title %q matches no crowsnest data stream", o.ID, attrs.Get("title"))
				continue
			}
			if tf := attrs.Get("timeFieldName").String(); fields[tf] != "date" {
				t.Errorf("data view %s: time field %q is not a mapped date", o.ID, tf)
			}
		case "search":
			fields := viewOf(o)
			if fields == nil {
				t.Errorf("search %s: no data view", o.ID)
				continue
			}
			var names []string
			for _, c := range attrs.Get("columns").Array() {
				names = append(names, c.String())
			}
			for _, s := range attrs.Get("sort").Array() {
				names = append(names, s.Get("0").String())
			}
			query := gjson.Get(attrs.Get("kibanaSavedObjectMeta.searchSourceJSON").String(), "query.query").String()
			for _, m := range fieldRE.FindAllStringSubmatch(query, -1) {
				names = append(names, m[1])
			}
			for _, f := range names {
				if _, ok := fields[f]; !ok {
					t.Errorf("search %s: field %q is not mapped", o.ID, f)
				}
			}
		case "dashboard":
			panels := gjson.Parse(attrs.Get("panelsJSON").String()).Array()
			if len(panels) == 0 {
				t.Errorf("dashboard %s: no panels", o.ID)
			}
			refs := map[string]bool{}
			for _, r := range o.References {
				refs[r.Name] = true
			}
			for _, p := range panels {
				if name := p.Get("panelRefName").String(); !refs[name] {
					t.Errorf("dashboard %s: panel %s refers to %q, not among its references", o.ID, p.Get("panelIndex"), name)
				}
			}
		}
	}
	if strings.Count(string(data), "\n") != len(order) {
		t.Error("the file must end with one newline after the last object")
	}
}
