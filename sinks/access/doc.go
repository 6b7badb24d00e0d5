// Package access renders the stores' access control for crowsnest from one
// tenants config: the ClickHouse users, roles, grants and row policies, and
// the Elasticsearch roles and users, each principal with the least it needs.
//
//   - the sink's writer: INSERT only (ClickHouse, plus the event_id and
//     timestamp lookup that keeps a redelivery from being stored twice;
//     Elasticsearch create_doc and auto_configure on the crowsnest data
//     streams), no read of event contents, no delete, no DDL;
//   - analysts: read everything crowsnest wrote, write nothing;
//   - per-tenant readers: read only the rows and documents of their
//     Kubernetes namespaces (ClickHouse row policies; an Elasticsearch
//     document-level security role template over the user's metadata).
//
// It renders and applies; it does not run migrations or install templates:
// that is the sinks' job, as a user allowed to (see docs/store-access.md).
// Names come from config and are validated strictly, so nothing a config
// holds can change the statements' meaning.
package access
