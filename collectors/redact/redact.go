package redact

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

// Redactor is the Transformer. It is stateless after New and safe for
// concurrent use.
type Redactor struct {
	cfg         Config
	replacement []byte // the JSON string
}

var _ publish.Transformer = (*Redactor)(nil)

// New validates cfg and returns a Redactor.
func New(cfg Config) (*Redactor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("redact config: %w", err)
	}
	return &Redactor{cfg: cfg, replacement: []byte(strconv.Quote(cfg.Replacement))}, nil
}

// Transform returns rec with its secrets replaced. rec.Data is not modified:
// a redacted record gets new bytes.
func (r *Redactor) Transform(_ context.Context, rec publish.Record) (publish.Record, error) {
	data := rec.Data
	var err error
	if r.cfg.KubernetesSecrets && rec.Source == topology.SourceK8sAudit {
		if data, err = r.kubernetes(data); err != nil {
			return rec, err
		}
	}
	for _, p := range r.cfg.Paths {
		if p.Source != "" && p.Source != rec.Source {
			continue
		}
		if data, err = r.path(data, p.Path); err != nil {
			return rec, err
		}
	}
	if r.cfg.AuthorizationTokens {
		data = r.tokens(data)
	}
	rec.Data = data
	return rec, nil
}

// The Kubernetes objects whose contents are secret.
var secretKinds = map[string]bool{"Secret": true, "ConfigMap": true}

// secretFields are the fields of a Secret or ConfigMap holding its values.
var secretFields = []string{"data", "stringData", "binaryData"}

const lastApplied = `metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration`

// kubernetes redacts an audit event's request and response objects.
func (r *Redactor) kubernetes(data []byte) ([]byte, error) {
	// Most events (level Metadata) carry neither object: skip the parse.
	if !bytes.Contains(data, []byte(`"requestObject"`)) && !bytes.Contains(data, []byte(`"responseObject"`)) {
		return data, nil
	}
	res := gjson.GetManyBytes(data, "objectRef.resource", "requestObject", "responseObject")
	resource := res[0].Str
	byResource := resource == "secrets" || resource == "configmaps"
	var err error
	for i, name := range []string{"requestObject", "responseObject"} {
		obj := res[1+i]
		if !obj.Exists() {
			continue
		}
		if obj.IsArray() {
			// A JSON patch: [{"op":"replace","path":"/data/password","value":...}].
			if byResource {
				if data, err = r.jsonPatch(data, name, obj); err != nil {
					return data, err
				}
			}
			continue
		}
		if !obj.IsObject() {
			continue
		}
		if data, err = r.object(data, name, obj, byResource); err != nil {
			return data, err
		}
	}
	return data, nil
}

// object redacts one Kubernetes object (or list of them) at path.
func (r *Redactor) object(data []byte, path string, obj gjson.Result, byResource bool) ([]byte, error) {
	kind := obj.Get("kind").Str
	var err error
	switch {
	case secretKinds[kind] || (kind == "" && byResource):
		for _, f := range secretFields {
			if data, err = r.values(data, path+"."+f); err != nil {
				return data, err
			}
		}
		return r.set(data, path+"."+lastApplied)
	case strings.HasSuffix(kind, "List") && (secretKinds[strings.TrimSuffix(kind, "List")] || byResource || kind == "List"):
		n := int(obj.Get("items.#").Int())
		for i := range n {
			item := path + ".items." + strconv.Itoa(i)
			if k := obj.Get("items." + strconv.Itoa(i) + ".kind").Str; k != "" && !secretKinds[k] {
				continue
			}
			if kind == "List" && !byResource && obj.Get("items."+strconv.Itoa(i)+".kind").Str == "" {
				continue
			}
			for _, f := range secretFields {
				if data, err = r.values(data, item+"."+f); err != nil {
					return data, err
				}
			}
			if data, err = r.set(data, item+"."+lastApplied); err != nil {
				return data, err
			}
		}
		return data, nil
	case kind == "TokenReview":
		return r.set(data, path+".spec.token")
	case kind == "TokenRequest":
		return r.set(data, path+".status.token")
	}
	return data, nil
}

// values replaces every value of the object at path, keeping its keys.
func (r *Redactor) values(data []byte, path string) ([]byte, error) {
	v := gjson.GetBytes(data, path)
	if !v.Exists() {
		return data, nil
	}
	if !v.IsObject() {
		return r.set(data, path)
	}
	var b []byte
	b = append(b, '{')
	first := true
	v.ForEach(func(k, _ gjson.Result) bool {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, k.Raw...)
		b = append(b, ':')
		b = append(b, r.replacement...)
		return true
	})
	b = append(b, '}')
	out, err := sjson.SetRawBytes(data, path, b)
	if err != nil {
		return data, fmt.Errorf("redact %s: %w", path, err)
	}
	return out, nil
}

// set replaces the value at path, if there is one.
func (r *Redactor) set(data []byte, path string) ([]byte, error) {
	if !gjson.GetBytes(data, path).Exists() {
		return data, nil
	}
	out, err := sjson.SetRawBytes(data, path, r.replacement)
	if err != nil {
		return data, fmt.Errorf("redact %s: %w", path, err)
	}
	return out, nil
}

// jsonPatch redacts the values of patch operations on secret paths.
func (r *Redactor) jsonPatch(data []byte, path string, ops gjson.Result) ([]byte, error) {
	var err error
	i := 0
	ops.ForEach(func(_, op gjson.Result) bool {
		p := op.Get("path").Str
		if strings.HasPrefix(p, "/data") || strings.HasPrefix(p, "/stringData") || strings.HasPrefix(p, "/binaryData") ||
			strings.HasPrefix(p, "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration") ||
			p == "/metadata/annotations" || p == "/metadata" || p == "" || p == "/" {
			data, err = r.set(data, path+"."+strconv.Itoa(i)+".value")
		}
		i++
		return err == nil
	})
	return data, err
}

// path redacts a configured path, expanding '#' over array elements.
func (r *Redactor) path(data []byte, path string) ([]byte, error) {
	head, tail, found := strings.Cut(path, ".#")
	if !found {
		return r.set(data, path)
	}
	n := int(gjson.GetBytes(data, head+".#").Int())
	var err error
	for i := range n {
		if data, err = r.path(data, head+"."+strconv.Itoa(i)+tail); err != nil {
			return data, err
		}
	}
	return data, nil
}

// Token patterns: "Bearer <token>" anywhere; "Basic <credentials>" only
// right after an Authorization key, since "basic" is an ordinary word.
var (
	bearerRE = regexp.MustCompile(`(?i)\b(bearer)(\s+|%20)[A-Za-z0-9\-._~+/]{8,}=*`)
	basicRE  = regexp.MustCompile(`(?i)(authorization\\?"?\s*[:=]\s*\\?"?\s*basic)(\s+|%20)[A-Za-z0-9+/]{4,}=*`)
)

// tokens redacts bearer tokens and Basic credentials in the raw bytes. The
// replacement text holds no quote or backslash, so the JSON stays valid.
func (r *Redactor) tokens(data []byte) []byte {
	if !mayHoldToken(data) {
		return data // the common case: no regexp, no allocation
	}
	repl := []byte("${1}${2}" + strings.NewReplacer(`$`, `$$`).Replace(r.cfg.Replacement))
	out := bearerRE.ReplaceAll(data, repl)
	out = basicRE.ReplaceAll(out, repl)
	return out
}

// mayHoldToken reports whether b contains "bearer" or "basic" in any case,
// in one pass.
func mayHoldToken(b []byte) bool {
	for _, c := range []byte{'b', 'B'} {
		// IndexByte is vectorized: jump from one candidate to the next.
		for i := 0; i < len(b); {
			j := bytes.IndexByte(b[i:], c)
			if j < 0 {
				break
			}
			i += j
			if hasFoldAt(b, i, "bearer") || hasFoldAt(b, i, "basic") {
				return true
			}
			i++
		}
	}
	return false
}

// hasFoldAt reports whether b holds the lower-case ASCII word w at i, in any
// case.
func hasFoldAt(b []byte, i int, w string) bool {
	if i+len(w) > len(b) {
		return false
	}
	for j := 0; j < len(w); j++ {
		if b[i+j]|0x20 != w[j] {
			return false
		}
	}
	return true
}
