// Package telemetry is what every long-running crowsnest process exposes about
// itself: its log/slog logger ([LogConfig], [NewLogger]), a Prometheus
// registry of its own ([NewRegistry]; never the global default), the standard
// per-component counters every stage reports ([ComponentMetrics]), and the
// HTTP [Server] for /metrics, /healthz and /readyz.
//
// It must not know about stages, streams or stores: a stage registers its
// readiness checks and takes a [Component] handle; this package only counts,
// logs and serves. It holds no global state: the registry, the server and the
// metrics are values the process creates once in main and hands down through
// each component's Settings.
package telemetry
