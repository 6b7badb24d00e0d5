package spool

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// The spool's metrics.
const (
	// MetricBytes is how many bytes wait for replay.
	MetricBytes = "crowsnest_collector_spool_bytes"
	// MetricRecords counts records put into and replayed from the spool.
	MetricRecords = "crowsnest_collector_spool_records_total"
	// MetricCorruptBytes counts bytes skipped as corrupt or torn: a gap.
	MetricCorruptBytes = "crowsnest_collector_spool_corrupt_bytes_total"
	// MetricFullWaits counts Puts that had to wait for room.
	MetricFullWaits = "crowsnest_collector_spool_full_waits_total"
	// MetricLostRecords counts records lost, by source and reason
	// (spool_full: dropped by full_policy drop; spool_corrupt: counted in
	// bytes, the records are unknown). Each loss is also a gap record.
	MetricLostRecords = "crowsnest_collector_lost_records_total"
	// MetricGapRecords counts gap records JetStream acknowledged.
	MetricGapRecords = "crowsnest_collector_gap_records_total"
)

type metrics struct {
	bytes             prometheus.Gauge
	puts, replays     prometheus.Counter
	corruptB, waitsFn prometheus.Counter
	lostRecords       *prometheus.CounterVec
	gaps              prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	records := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRecords, Help: "Records put into (op=put) and replayed from (op=replayed) the collector's disk spool.",
	}, []string{"op"})
	m := &metrics{
		bytes:    prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricBytes, Help: "Bytes in the collector's disk spool waiting for replay."}),
		puts:     records.WithLabelValues("put"),
		replays:  records.WithLabelValues("replayed"),
		corruptB: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricCorruptBytes, Help: "Bytes of the disk spool skipped as corrupt or torn (a gap: records lost)."}),
		waitsFn:  prometheus.NewCounter(prometheus.CounterOpts{Name: MetricFullWaits, Help: "Records that waited for room in a full disk spool (backpressure)."}),
		lostRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricLostRecords, Help: "Records the collector lost, by source and reason (spool_full: dropped by spool full_policy drop); each loss is also reported as a gap record.",
		}, []string{"source", "reason"}),
		gaps: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricGapRecords, Help: "Gap records (counts of lost records) acknowledged by JetStream."}),
	}
	for _, c := range []prometheus.Collector{m.bytes, records, m.corruptB, m.waitsFn, m.lostRecords, m.gaps} {
		if err := reg.Register(c); err != nil {
			if _, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
				return nil, fmt.Errorf("register spool metrics: one spool per registry: %w", err)
			}
			return nil, fmt.Errorf("register spool metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) put(used int64) {
	if m != nil {
		m.puts.Inc()
		m.bytes.Set(float64(used))
	}
}

func (m *metrics) replayed(n int, used int64) {
	if m != nil {
		m.replays.Add(float64(n))
		m.bytes.Set(float64(used))
	}
}

func (m *metrics) corrupt(n int64) {
	if m != nil {
		m.corruptB.Add(float64(n))
	}
}

func (m *metrics) fullWait() {
	if m != nil {
		m.waitsFn.Inc()
	}
}

func (m *metrics) lost(source, reason string, records int64) {
	if m != nil && records > 0 {
		if source == "" {
			source = "unknown"
		}
		m.lostRecords.WithLabelValues(source, reason).Add(float64(records))
	}
}

func (m *metrics) gapReported() {
	if m != nil {
		m.gaps.Inc()
	}
}
