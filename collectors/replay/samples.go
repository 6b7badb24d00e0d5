package replay

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// bundled is the sample `crowsnest run` replays when no files are given.
//
//go:embed samples/*.jsonl
var bundled embed.FS

// bundledFiles names the bundled files and their sources.
var bundledFiles = []FileConfig{
	{Source: topology.SourceK8sAudit, Path: "samples/k8s_audit.jsonl"},
	{Source: topology.SourceFalco, Path: "samples/falco.jsonl"},
	{Source: topology.SourceTetragon, Path: "samples/tetragon.jsonl"},
}

// maxLine caps one sample record.
const maxLine = 4 << 20

// sample is one record of the replayed set, as loaded.
type sample struct {
	source string
	data   []byte
	// at is the record's own timestamp: it orders the merged set, and every
	// timestamp in the record is shifted by (now - at) when it is replayed.
	at time.Time
	rw rewriter
}

// sampleSet is the records of one loop, in replay order.
type sampleSet struct {
	records []sample
	// fingerprint identifies the set, so that a checkpoint taken on another
	// set is not mistaken for a position in this one.
	fingerprint string
}

// loadSamples reads files, or the bundled sample when files is empty, and
// merges their records by timestamp (files without timestamps keep their
// order, after one another).
func loadSamples(files []FileConfig) (*sampleSet, error) {
	open := func(path string) (io.ReadCloser, error) { return os.Open(path) }
	if len(files) == 0 {
		files = bundledFiles
		open = func(path string) (io.ReadCloser, error) { return bundled.Open(path) }
	}
	set := &sampleSet{}
	fp := sha256.New()
	for _, f := range files {
		rc, err := open(f.Path)
		if err != nil {
			return nil, fmt.Errorf("replay file %s: %w", f.Path, err)
		}
		recs, err := readSamples(rc, f)
		rc.Close()
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			fp.Write([]byte(r.source))
			fp.Write(r.data)
		}
		set.records = append(set.records, recs...)
	}
	if len(set.records) == 0 {
		return nil, fmt.Errorf("replay: no records in %d files", len(files))
	}
	if !slices.ContainsFunc(set.records, func(s sample) bool { return s.at.IsZero() }) {
		slices.SortStableFunc(set.records, func(a, b sample) int { return a.at.Compare(b.at) })
	}
	set.fingerprint = hex.EncodeToString(fp.Sum(nil)[:16])
	return set, nil
}

func readSamples(r io.Reader, f FileConfig) ([]sample, error) {
	rw := rewriterFor(f.Source)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var out []sample
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if !gjson.ValidBytes(b) {
			return nil, fmt.Errorf("replay file %s:%d: not a JSON record", f.Path, line)
		}
		s := sample{source: f.Source, data: bytes.Clone(b), rw: rw}
		at, err := rw.timestamp(s.data)
		if err != nil {
			return nil, fmt.Errorf("replay file %s:%d: %w", f.Path, line, err)
		}
		s.at = at
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("replay file %s: %w", f.Path, err)
	}
	return out, nil
}
