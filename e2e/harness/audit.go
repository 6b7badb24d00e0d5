package harness

import (
	"bufio"
	"fmt"
	"os"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
)

// AuditLog is a generated Kubernetes audit log (JSON lines) and what it must
// produce downstream.
type AuditLog struct {
	Path   string
	Prefix string
	// EventIDs are the event.id of every valid record, as the processor
	// derives them (auditID and stage).
	EventIDs []string
	// Bad are the markers of the malformed lines, one per line; each appears
	// in its line's bytes, so a dead-letter record can be matched to it.
	Bad []string
	// AlertRecords is how many records should raise an alert (a service
	// account listing secrets cluster-wide, each from its own account so
	// suppression keeps none of them back).
	AlertRecords int
}

// AuditSpec says what to generate.
type AuditSpec struct {
	Prefix     string // unique per run: auditIDs are <prefix>-<n>
	Records    int    // valid records
	BadEvery   int    // a malformed line after every BadEvery valid ones (0: none)
	AlertEvery int    // every AlertEvery-th record raises an alert (0: none)
}

// WriteAuditLog writes the log spec describes to path.
func WriteAuditLog(path string, spec AuditSpec) (AuditLog, error) {
	log := AuditLog{Path: path, Prefix: spec.Prefix, EventIDs: make([]string, 0, spec.Records)}
	f, err := os.Create(path)
	if err != nil {
		return log, fmt.Errorf("audit log: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	base := time.Now().UTC().Add(-time.Hour)
	for i := range spec.Records {
		auditID := fmt.Sprintf("%s-%07d", spec.Prefix, i)
		ts := base.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano)
		if spec.AlertEvery > 0 && i%spec.AlertEvery == spec.AlertEvery-1 {
			log.AlertRecords++
			fmt.Fprintf(w, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":%q,"stage":"ResponseComplete","requestURI":"/api/v1/secrets","verb":"list","user":{"username":"system:serviceaccount:team-%d:reader","groups":["system:serviceaccounts","system:authenticated"]},"sourceIPs":["10.1.%d.%d"],"userAgent":"chaos/1.0","objectRef":{"resource":"secrets","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":%q,"stageTimestamp":%q}`+"\n",
				auditID, i, (i/250)%250, i%250, ts, ts)
		} else {
			fmt.Fprintf(w, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":%q,"stage":"ResponseComplete","requestURI":"/api/v1/namespaces/ns-%d/pods/web-%d","verb":"get","user":{"username":"alice@example.com","groups":["developers","system:authenticated"]},"sourceIPs":["192.0.2.%d"],"userAgent":"kubectl/v1.31.2","objectRef":{"resource":"pods","namespace":"ns-%d","name":"web-%d","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":%q,"stageTimestamp":%q}`+"\n",
				auditID, i%50, i, i%250, i%50, i, ts, ts)
		}
		id, err := msgid.K8sAudit(auditID, "ResponseComplete")
		if err != nil {
			_ = f.Close()
			return log, err
		}
		log.EventIDs = append(log.EventIDs, id)
		if spec.BadEvery > 0 && i%spec.BadEvery == spec.BadEvery-1 {
			marker := fmt.Sprintf("%s-bad-%04d", spec.Prefix, len(log.Bad))
			if len(log.Bad)%2 == 0 {
				// Cut short: not JSON at all.
				fmt.Fprintf(w, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"%s","stage":`+"\n", marker)
			} else {
				// JSON, but not an audit event.
				fmt.Fprintf(w, `{"message":"%s","level":"info"}`+"\n", marker)
			}
			log.Bad = append(log.Bad, marker)
		}
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return log, fmt.Errorf("audit log: %w", err)
	}
	if err := f.Close(); err != nil {
		return log, fmt.Errorf("audit log: %w", err)
	}
	return log, nil
}
