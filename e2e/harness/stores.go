package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

var storeClient = &http.Client{Timeout: 2 * time.Minute}

// ClickHouseQuery runs query over HTTP against the server at base and
// returns the body (TSV unless the query says otherwise).
func ClickHouseQuery(ctx context.Context, base, query string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("clickhouse url: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(query))
	if err != nil {
		return "", err
	}
	resp, err := storeClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("clickhouse %q: %w", query, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("clickhouse %q: %w", query, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("clickhouse %q: %s: %s", query, resp.Status, bytes.TrimSpace(body))
	}
	return string(body), nil
}

// ClickHouseCounts is count() and uniqExact(event_id) of a table.
type ClickHouseCounts struct {
	Rows, Unique int
}

// ClickHouseTableCounts returns count() and uniqExact(event_id) of db.table,
// without FINAL: rows a redelivered batch inserted twice count twice until a
// merge, which is what "no duplicates" must rule out.
func ClickHouseTableCounts(ctx context.Context, base, db, table string) (ClickHouseCounts, error) {
	out, err := ClickHouseQuery(ctx, base, fmt.Sprintf("SELECT count(), uniqExact(event_id) FROM `%s`.`%s` FORMAT TSV", db, table))
	if err != nil {
		return ClickHouseCounts{}, err
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return ClickHouseCounts{}, fmt.Errorf("clickhouse counts: unexpected answer %q", out)
	}
	var c ClickHouseCounts
	if c.Rows, err = strconv.Atoi(f[0]); err != nil {
		return c, fmt.Errorf("clickhouse counts: %w", err)
	}
	if c.Unique, err = strconv.Atoi(f[1]); err != nil {
		return c, fmt.Errorf("clickhouse counts: %w", err)
	}
	return c, nil
}

// ClickHouseCensus counts every event_id of db.table, row by row.
func ClickHouseCensus(ctx context.Context, base, db, table string) (*Census, error) {
	out, err := ClickHouseQuery(ctx, base, fmt.Sprintf("SELECT event_id FROM `%s`.`%s` FORMAT TSV", db, table))
	if err != nil {
		return nil, err
	}
	c := NewCensus("clickhouse " + db + "." + table)
	for line := range strings.Lines(out) {
		if id := strings.TrimRight(line, "\n"); id != "" {
			c.Add(id)
		}
	}
	return c, nil
}

// ClickHouseDropDatabase removes a scenario's database.
func ClickHouseDropDatabase(ctx context.Context, base, db string) error {
	_, err := ClickHouseQuery(ctx, base, fmt.Sprintf("DROP DATABASE IF EXISTS `%s`", db))
	return err
}

// ElasticsearchCount refreshes index (a data stream or pattern) and returns
// its document count; a missing index counts 0.
func ElasticsearchCount(ctx context.Context, base, index string) (int, error) {
	if _, err := esDo(ctx, http.MethodPost, base+"/"+index+"/_refresh?ignore_unavailable=true&allow_no_indices=true"); err != nil {
		return 0, err
	}
	body, err := esDo(ctx, http.MethodGet, base+"/"+index+"/_count?ignore_unavailable=true&allow_no_indices=true")
	if err != nil {
		return 0, err
	}
	var r struct {
		Count int `json:"count"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("elasticsearch count %s: %w", index, err)
	}
	return r.Count, nil
}

// ElasticsearchEmptyDataStreams empties the data streams matching pattern:
// rolls each over and deletes its older backing indices. (The development
// server refuses DELETE _data_stream, so an empty stream stays behind.)
func ElasticsearchEmptyDataStreams(ctx context.Context, base, pattern string) error {
	body, err := esDo(ctx, http.MethodGet, base+"/_resolve/index/"+pattern+"?expand_wildcards=all")
	if err != nil {
		return err
	}
	var r struct {
		DataStreams []struct {
			Name           string   `json:"name"`
			BackingIndices []string `json:"backing_indices"`
		} `json:"data_streams"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("elasticsearch resolve %s: %w", pattern, err)
	}
	var errs []error
	for _, ds := range r.DataStreams {
		if _, err := esDo(ctx, http.MethodPost, base+"/"+ds.Name+"/_rollover"); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, idx := range ds.BackingIndices {
			if _, err := esDo(ctx, http.MethodDelete, base+"/"+idx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func esDo(ctx context.Context, method, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := storeClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch %s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch %s %s: %w", method, u, err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotFound {
		return nil, fmt.Errorf("elasticsearch %s %s: %s: %s", method, u, resp.Status, bytes.TrimSpace(body))
	}
	return body, nil
}
