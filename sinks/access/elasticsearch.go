package access

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	es "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"golang.org/x/crypto/bcrypt"

	essink "github.com/crowsnest-siem/crowsnest/sinks/elasticsearch"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// ESRole is an Elasticsearch role, as PUT _security/role/<name> takes it.
type ESRole struct {
	Name    string         `json:"-"`
	Cluster []string       `json:"cluster"`
	Indices []ESIndexGrant `json:"indices"`
	// Metadata says the role is crowsnest's, for whoever lists roles.
	Metadata map[string]string `json:"metadata"`
}

// ESIndexGrant is one entry of a role's indices.
type ESIndexGrant struct {
	Names      []string        `json:"names"`
	Privileges []string        `json:"privileges"`
	Query      json.RawMessage `json:"query,omitempty"`
}

// ESUser is an Elasticsearch native user, as PUT _security/user/<name>
// takes it. PasswordHash is bcrypt, the server's default password hashing.
type ESUser struct {
	Name         string         `json:"-"`
	PasswordHash string         `json:"password_hash"`
	Roles        []string       `json:"roles"`
	Metadata     ESUserMetadata `json:"metadata"`
}

// ESUserMetadata is what the tenant role template reads.
type ESUserMetadata struct {
	Tenant     string   `json:"crowsnest_tenant,omitempty"`
	Namespaces []string `json:"namespaces,omitempty"`
}

// ESPlan is everything to put into Elasticsearch: roles first.
type ESPlan struct {
	Roles []ESRole
	Users []ESUser
}

// tenantQuery is the tenant role's document-level security: a terms query
// on the namespace field over the user's metadata.namespaces, rendered by
// the server's mustache for each user. A user without that metadata gets
// an invalid query, so its searches fail rather than see anything.
var tenantQuery = json.RawMessage(`{"template":{"source":"{\"terms\":{\"` + NamespaceField + `\":{{#toJson}}_user.metadata.namespaces{{/toJson}}}}"}}`)

// ESDataStreams returns the index patterns of the sink's data streams
// (logs-crowsnest.events-*, logs-crowsnest.alerts-*), taken from the
// generated index templates the sink installs.
func ESDataStreams() ([]string, error) {
	var out []string
	for _, k := range []sink.Kind{sink.KindEvents, sink.KindAlerts} {
		n, err := essink.DataStreamName(k, "*")
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// ElasticsearchPlan returns the roles and users of c. bcryptCost is the
// password hashing cost (bcrypt.DefaultCost, 10, is what the server's
// default "bcrypt" setting expects; a server configured otherwise rejects
// the hashes).
func ElasticsearchPlan(c Config, pw Passwords, bcryptCost int) (ESPlan, error) {
	if err := c.Validate(); err != nil {
		return ESPlan{}, err
	}
	streams, err := ESDataStreams()
	if err != nil {
		return ESPlan{}, err
	}
	meta := map[string]string{"generated_by": "crowsnest store-access"}
	read := []string{"read", "view_index_metadata"}
	plan := ESPlan{Roles: []ESRole{
		// auto_configure lets the first document create the data stream
		// from the template an administrator (or the sink with
		// manage_templates) installed; create_doc writes new documents and
		// nothing else: no overwrite, no delete, no read.
		{Name: c.Writer, Cluster: []string{}, Indices: []ESIndexGrant{{Names: streams, Privileges: []string{"create_doc", "auto_configure"}}}, Metadata: meta},
		{Name: c.AnalystRole, Cluster: []string{}, Indices: []ESIndexGrant{{Names: streams, Privileges: read}}, Metadata: meta},
		{Name: c.Elasticsearch.TenantRole, Cluster: []string{}, Indices: []ESIndexGrant{{Names: streams, Privileges: read, Query: tenantQuery}}, Metadata: meta},
	}}
	user := func(name string, roles []string, md ESUserMetadata) error {
		p, ok := pw[name]
		if !ok || !p.IsSet() {
			return fmt.Errorf("elasticsearch: no password for user %s", name)
		}
		h, err := bcrypt.GenerateFromPassword([]byte(p.Value()), bcryptCost)
		if err != nil {
			return fmt.Errorf("elasticsearch: hash the password of %s: %w", name, err)
		}
		plan.Users = append(plan.Users, ESUser{Name: name, PasswordHash: string(h), Roles: roles, Metadata: md})
		return nil
	}
	if err := user(c.Writer, []string{c.Writer}, ESUserMetadata{}); err != nil {
		return ESPlan{}, err
	}
	for _, u := range c.Analysts {
		if err := user(u, []string{c.AnalystRole}, ESUserMetadata{}); err != nil {
			return ESPlan{}, err
		}
	}
	for _, t := range c.Tenants {
		for _, u := range t.Users {
			if err := user(u, []string{c.Elasticsearch.TenantRole}, ESUserMetadata{Tenant: t.Name, Namespaces: t.Namespaces}); err != nil {
				return ESPlan{}, err
			}
		}
	}
	return plan, nil
}

// ApplyElasticsearch puts the plan's roles, then its users, through client
// (an administrator's: manage_security), stopping at the first refusal.
func ApplyElasticsearch(ctx context.Context, client *es.Client, plan ESPlan) error {
	for _, r := range plan.Roles {
		body, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := esDo(ctx, client, esapi.SecurityPutRoleRequest{Name: r.Name, Body: bytes.NewReader(body)}, "role "+r.Name); err != nil {
			return err
		}
	}
	for _, u := range plan.Users {
		body, err := json.Marshal(u)
		if err != nil {
			return err
		}
		if err := esDo(ctx, client, esapi.SecurityPutUserRequest{Username: u.Name, Body: bytes.NewReader(body)}, "user "+u.Name); err != nil {
			return err
		}
	}
	return nil
}

func esDo(ctx context.Context, client *es.Client, req esapi.Request, what string) error {
	res, err := req.Do(ctx, client)
	if err != nil {
		return fmt.Errorf("elasticsearch: put %s: %w", what, err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusCreated {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 4096))
	if err != nil {
		return fmt.Errorf("elasticsearch: put %s: %s (reading the reply: %w)", what, res.Status(), err)
	}
	return fmt.Errorf("elasticsearch: put %s: %s: %s", what, res.Status(), strings.TrimSpace(string(body)))
}
