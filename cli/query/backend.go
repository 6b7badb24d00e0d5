package query

import "context"

// Backend runs a hunt on one store. Run returns at most limit rows (limit
// ≥ 1), noting in Result.More whether more matched.
type Backend interface {
	Run(ctx context.Context, h Hunt, a Args, limit int) (Result, error)
}

var (
	_ Backend = (*ClickHouse)(nil)
	_ Backend = (*Elasticsearch)(nil)
)
