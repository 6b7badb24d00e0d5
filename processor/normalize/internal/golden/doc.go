// Package golden runs a mapper's golden-file cases: each
// testdata/<name>.input.json holds one record, byte for byte as a collector
// would publish it, and testdata/<name>.golden.json the events it must become
// (pretty-printed AppendJSON output, or the rejection). The same cases seed
// the mapper's fuzz target and feed its benchmarks. Test support only.
package golden
