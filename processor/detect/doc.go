// Package detect is the processor's detection stage: it loads Sigma rules
// (the built-in pack of processor/detect/rules and the user's rule
// directories), compiles them with processor/detect/sigma, runs them on each
// normalized event and turns matches into schemas.Alert documents — a stable
// alert id derived from the rule and the triggering event, the rule's
// metadata and ATT&CK tags, the OCSF Detection Finding class, the entity the
// alert is about — with suppression of repeats per rule and entity within a
// window, counted. Correlation windows run on event time: in the processor a
// per-source watermark with allowed lateness decides what is late and when a
// window closes; files (Lines, MergeLines) replay on event time alone.
// Correlation conditions that hold for few events (lt, lte, eq, neq) are
// judged once per window, when it closes.
//
// What it must not do: NATS or any other I/O besides reading rule files and
// the StateStore it is given (processor/detect/kvstate; processor/pipeline
// publishes the alerts), normalization, or global mutable state; its
// per-event path allocates only for alerts and correlation matches.
package detect
