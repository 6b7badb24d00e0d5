// Package falco maps Falco alerts to crowsnest events: the JSON Falco writes
// with json_output (file, stdout, http_output, program_output) and the body
// falcosidekick forwards (its FalcoPayload: uuid, time, rule, priority,
// output, output_fields, source, tags, hostname). Syscall fields (proc.*,
// user.*, fd.*, container.*, k8s.*) become ECS process, user, file, network,
// container and orchestrator fields; k8s_audit-plugin fields (ka.*) the
// Kubernetes ones. Every output field is also kept, bounded, in
// falco.output_fields.
//
// The ECS mapping follows Elastic's Falco integration where it is sound;
// DIFFERENCES.md lists where we deliberately differ and the corpus test
// enforces that list.
//
// It must not re-evaluate or second-guess Falco's rule: an alert stays an
// alert (event.kind alert, OCSF Detection Finding), whatever its priority.
package falco
