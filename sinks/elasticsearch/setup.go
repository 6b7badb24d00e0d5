package elasticsearch

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/tidwall/gjson"
)

//go:embed ilm-policy.json
var ilmPolicyJSON []byte

// ILMPolicy returns the ILM policy crowsnest ships for x-pack clusters (the
// body of PUT _ilm/policy/<name>): roll over daily or at 50 GB per primary
// shard, force-merge after two days, delete after 90 days — or after
// retention, when it is not empty.
func ILMPolicy(retention string) ([]byte, error) {
	var p map[string]any
	if err := json.Unmarshal(ilmPolicyJSON, &p); err != nil {
		return nil, fmt.Errorf("ilm policy: %w", err)
	}
	if retention != "" {
		del, ok := digMap(p, "policy", "phases", "delete")
		if !ok {
			return nil, errors.New("ilm policy: no delete phase")
		}
		del["min_age"] = retention
	}
	return json.Marshal(p)
}

func digMap(m map[string]any, path ...string) (map[string]any, bool) {
	for _, k := range path {
		next, ok := m[k].(map[string]any)
		if !ok {
			return nil, false
		}
		m = next
	}
	return m, true
}

// setup installs the templates and the lifecycle. Every step is idempotent,
// so it runs again after any failure.
func (s *Sink) setup(ctx context.Context) error {
	if !s.cfg.ManageTemplates {
		return nil
	}
	lc, err := s.lifecycle(ctx)
	if err != nil {
		return err
	}
	for _, t := range s.templates {
		if err := s.installTemplate(ctx, t, lc); err != nil {
			return fmt.Errorf("%s templates: %w", t.kind, err)
		}
	}
	return nil
}

// lifecycle decides how data ages out on this server: the named ILM policy
// (installed if missing), or the data stream lifecycle with the retention
// where the server has it, or nothing.
func (s *Sink) lifecycle(ctx context.Context) (lifecycle, error) {
	lc := s.cfg.Lifecycle
	if lc.ILMPolicy != "" {
		r, err := s.do(ctx, esapi.ILMGetStatusRequest{})
		if err != nil {
			return lifecycle{}, fmt.Errorf("ILM status: %w", err)
		}
		if r.status != http.StatusOK {
			return lifecycle{}, fmt.Errorf("lifecycle.ilm_policy is %q but the server has no ILM (a distribution without x-pack?): GET _ilm/status: %s", lc.ILMPolicy, r.errorText())
		}
		r, err = s.do(ctx, esapi.ILMGetLifecycleRequest{Policy: lc.ILMPolicy})
		if err != nil {
			return lifecycle{}, fmt.Errorf("get ILM policy %s: %w", lc.ILMPolicy, err)
		}
		switch r.status {
		case http.StatusOK:
			s.log.Info("ILM policy exists; leaving it as it is", "policy", lc.ILMPolicy)
		case http.StatusNotFound:
			body, err := ILMPolicy(lc.Retention)
			if err != nil {
				return lifecycle{}, err
			}
			r, err := s.do(ctx, esapi.ILMPutLifecycleRequest{Policy: lc.ILMPolicy, Body: bytes.NewReader(body)})
			if err != nil {
				return lifecycle{}, fmt.Errorf("put ILM policy %s: %w", lc.ILMPolicy, err)
			}
			if r.status != http.StatusOK {
				return lifecycle{}, fmt.Errorf("put ILM policy %s: %s", lc.ILMPolicy, r.errorText())
			}
			s.log.Info("ILM policy installed", "policy", lc.ILMPolicy)
		default:
			return lifecycle{}, fmt.Errorf("get ILM policy %s: %s", lc.ILMPolicy, r.errorText())
		}
		return lifecycle{ilmPolicy: lc.ILMPolicy}, nil
	}
	if lc.Retention == "" {
		return lifecycle{}, nil
	}
	r, err := s.do(ctx, esapi.IndicesGetDataLifecycleStatsRequest{})
	if err != nil {
		return lifecycle{}, fmt.Errorf("data stream lifecycle stats: %w", err)
	}
	switch r.status {
	case http.StatusOK, http.StatusForbidden:
		// Forbidden: the sink's user may not read the stats, which exist
		// on every server that has the lifecycle.
		return lifecycle{retention: lc.Retention}, nil
	}
	s.log.Info("the server has no data stream lifecycle: lifecycle.retention not applied, data is kept until deleted",
		"retention", lc.Retention, "reply", r.errorText())
	return lifecycle{}, nil
}

// installTemplate puts the component and index templates of t, then brings
// an existing data stream up to date: its mappings (new fields take effect
// at once, not at the next rollover) and its retention.
func (s *Sink) installTemplate(ctx context.Context, t *template, lc lifecycle) error {
	// A newer crowsnest may have installed newer mappings: an older sink
	// still running during an upgrade must not take them back.
	r, err := s.do(ctx, esapi.ClusterGetComponentTemplateRequest{Name: []string{t.componentName}})
	if err != nil {
		return fmt.Errorf("get component template %s: %w", t.componentName, err)
	}
	if r.status == http.StatusOK {
		installed := gjson.GetBytes(r.body, `component_templates.0.component_template._meta.crowsnest_schema_version`).String()
		if newerVersion(installed, t.schemaVersion) {
			s.log.Warn("a newer crowsnest schema is installed; leaving the templates as they are",
				"template", t.componentName, "installed", installed, "ours", t.schemaVersion)
			return nil
		}
	}
	r, err = s.do(ctx, esapi.ClusterPutComponentTemplateRequest{Name: t.componentName, Body: bytes.NewReader(t.component)})
	if err != nil {
		return fmt.Errorf("put component template %s: %w", t.componentName, err)
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("put component template %s: %s", t.componentName, r.errorText())
	}
	body, err := t.indexTemplateBody(lc)
	if err != nil {
		return fmt.Errorf("index template %s: %w", t.prefix, err)
	}
	r, err = s.do(ctx, esapi.IndicesPutIndexTemplateRequest{Name: t.prefix, Body: bytes.NewReader(body)})
	if err != nil {
		return fmt.Errorf("put index template %s: %w", t.prefix, err)
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("put index template %s: %s", t.prefix, r.errorText())
	}

	ds := dataStream(t.prefix, s.cfg.Namespace)
	r, err = s.do(ctx, esapi.IndicesPutMappingRequest{Index: []string{ds}, Body: bytes.NewReader(t.mappings)})
	if err != nil {
		return fmt.Errorf("update mappings of %s: %w", ds, err)
	}
	switch r.status {
	case http.StatusOK, http.StatusNotFound: // not created yet: the template applies
	default:
		// A changed field type cannot be applied in place; the next
		// backing index (after a rollover) gets the template's mappings.
		s.log.Warn("the data stream's mappings could not be updated in place; they apply from its next rollover",
			"data_stream", ds, "reply", r.errorText())
	}
	if lc.retention != "" {
		r, err = s.do(ctx, esapi.IndicesPutDataLifecycleRequest{Name: []string{ds},
			Body: bytes.NewReader([]byte(`{"data_retention":"` + lc.retention + `"}`))})
		if err != nil {
			return fmt.Errorf("put lifecycle of %s: %w", ds, err)
		}
		if r.status != http.StatusOK && r.status != http.StatusNotFound {
			s.log.Warn("the data stream's retention could not be set", "data_stream", ds, "reply", r.errorText())
		}
	}
	s.log.Info("templates installed", "data_stream", ds, "schema_version", t.schemaVersion,
		"ilm_policy", lc.ilmPolicy, "retention", lc.retention)
	return nil
}
