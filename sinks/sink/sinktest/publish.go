package sinktest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/schemas"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// EventDoc returns a realistic Kubernetes-audit event (about 1 KB of JSON)
// whose event.id is id.
func EventDoc(id string) []byte {
	ts := time.Date(2026, 11, 26, 10, 15, 0, 0, time.UTC)
	e := schemas.Event{
		Timestamp: ts,
		Message:   "get secrets/db-password in namespace payments",
		Event: schemas.EventFields{
			ID: id, Kind: "event", Category: []string{"iam"}, Type: []string{"access"},
			Action: "get", Outcome: "success", Dataset: "crowsnest.k8s_audit", Module: "crowsnest",
			Ingested: ts.Add(120 * time.Millisecond),
		},
		Crowsnest: schemas.Crowsnest{SchemaVersion: schemas.SchemaVersion, Source: topology.SourceK8sAudit,
			Collector: schemas.CrowsnestCollector{ID: "node-1", Node: "node-1"}},
		OCSF: schemas.OCSF{ClassUID: 6003, CategoryUID: 6, ActivityID: 2, TypeUID: 600302, SeverityID: 1},
		Orchestrator: schemas.Orchestrator{Type: "kubernetes", Namespace: "payments",
			Cluster:  schemas.OrchestratorCluster{Name: "prod-eu-1"},
			Resource: schemas.OrchestratorResource{Type: "secrets", Name: "db-password"}},
		User:      schemas.User{Name: "system:serviceaccount:payments:api", Roles: []string{"system:serviceaccounts", "system:authenticated"}},
		Source:    schemas.Source{IP: "10.12.4.17"},
		URL:       schemas.URL{Original: "/api/v1/namespaces/payments/secrets/db-password"},
		UserAgent: schemas.UserAgent{Original: "payments-api/1.8.2 (linux/amd64) kubernetes/client-go"},
		Related:   schemas.Related{IP: []string{"10.12.4.17"}, User: []string{"system:serviceaccount:payments:api"}},
		Labels:    map[string]string{"cluster": "prod-eu-1", "node": "node-1"},
	}
	e.Event.Original = strings.Repeat("x", 300)
	return e.AppendJSON(nil)
}

// AlertDoc returns an alert whose event.id is id, triggered by eventIDs.
func AlertDoc(id string, eventIDs ...string) []byte {
	ts := time.Date(2026, 11, 26, 10, 15, 2, 0, time.UTC)
	a := schemas.Alert{
		Timestamp: ts,
		Message:   "Terminal shell in container",
		Event: schemas.EventFields{ID: id, Kind: "alert", Dataset: "crowsnest.k8s_audit", Module: "crowsnest",
			Severity: 73, RiskScore: 73, Ingested: ts},
		Crowsnest: schemas.Crowsnest{SchemaVersion: schemas.SchemaVersion, Source: topology.SourceK8sAudit,
			Alert: schemas.CrowsnestAlert{EventIDs: eventIDs, Entity: "pod:payments/api-7f9c"}},
		Orchestrator: schemas.Orchestrator{Type: "kubernetes", Namespace: "payments",
			Resource: schemas.OrchestratorResource{Type: "pods", Name: "api-7f9c"}},
		User: schemas.User{Name: "alice@example.com"},
		Rule: schemas.Rule{ID: "cn-0001", Name: "Exec into pod", Level: "high", Ruleset: "builtin"},
	}
	return a.AppendJSON(nil)
}

// Message is a message to publish: a body under an id on a stream.
type Message struct {
	Kind sink.Kind
	ID   string
	Data []byte
}

// Events returns n event messages with ids <prefix>-e<i>.
func Events(prefix string, n int) []Message {
	out := make([]Message, n)
	for i := range out {
		id := fmt.Sprintf("%s-e%d", prefix, i)
		out[i] = Message{Kind: sink.KindEvents, ID: id, Data: EventDoc(id)}
	}
	return out
}

// Alerts returns n alert messages with ids <prefix>-a<i>.
func Alerts(prefix string, n int) []Message {
	out := make([]Message, n)
	for i := range out {
		id := fmt.Sprintf("%s-a%d", prefix, i)
		out[i] = Message{Kind: sink.KindAlerts, ID: id, Data: AlertDoc(id, prefix+"-trigger")}
	}
	return out
}

// Publish publishes msgs with their ids as Nats-Msg-Id and waits until
// JetStream stored them all.
func Publish(tb testing.TB, js jetstream.JetStream, msgs []Message) {
	tb.Helper()
	events, _ := topology.EventSubject(topology.SourceK8sAudit)
	alerts, _ := topology.AlertSubject("high")
	for _, m := range msgs {
		subj := events
		if m.Kind == sink.KindAlerts {
			subj = alerts
		}
		h := nats.Header{}
		h.Set(headers.MsgID, m.ID)
		h.Set(headers.Source, topology.SourceK8sAudit)
		msg := &nats.Msg{Subject: subj, Header: h, Data: m.Data}
		for {
			_, err := js.PublishMsgAsync(msg)
			if err == nil {
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				tb.Fatalf("publish %s: %v", m.ID, err)
			}
			// The server acknowledges slower than we publish (a loaded
			// machine): let the outstanding publishes finish, then go on.
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(30 * time.Second):
				tb.Fatalf("publish %s: %d messages not acknowledged after 30s", m.ID, js.PublishAsyncPending())
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		tb.Fatalf("publish: %d messages not acknowledged after 30s", js.PublishAsyncPending())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var stored uint64
	for _, name := range []string{topology.EventsStream, topology.AlertsStream} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			tb.Fatalf("stream %s: %v", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			tb.Fatalf("stream %s: %v", name, err)
		}
		stored += info.State.Msgs
	}
	if stored < uint64(len(msgs)) {
		tb.Fatalf("publish: streams hold %d messages, published %d", stored, len(msgs))
	}
}

// IDs returns the ids of msgs.
func IDs(msgs []Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}
