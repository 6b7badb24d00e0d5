package elasticsearch_test

import (
	"testing"

	"github.com/crowsnest-siem/crowsnest/sinks/elasticsearch"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

func TestDataStreamName(t *testing.T) {
	for k, want := range map[sink.Kind]string{
		sink.KindEvents: "logs-crowsnest.events-prod",
		sink.KindAlerts: "logs-crowsnest.alerts-prod",
	} {
		got, err := elasticsearch.DataStreamName(k, "prod")
		if err != nil || got != want {
			t.Errorf("DataStreamName(%s, prod) = %q, %v; want %q", k, got, err, want)
		}
	}
}

func TestOpenValidates(t *testing.T) {
	cfg := elasticsearch.NewDefaultConfig()
	if _, err := elasticsearch.Open(cfg); err != nil {
		t.Fatalf("default config: %v", err)
	}
	cfg.Addresses = []string{"ftp://x"}
	if _, err := elasticsearch.Open(cfg); err == nil {
		t.Error("Open accepted an ftp address")
	}
}
