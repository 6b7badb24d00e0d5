-- title: Privileged workloads created
-- description: Pods and workload controllers created (and allowed) in the window whose pod spec breaks isolation: privileged containers, host PID, network or IPC namespaces, host paths, or added capabilities. Run it over the last day to see what appeared since yesterday.
-- schema: 1.1.0
-- param from: start of the window, inclusive (UTC)
-- param to: end of the window, exclusive (UTC)
-- column created (time): when it was created
-- column namespace (string): its namespace
-- column kind (string): the resource: pods, deployments, daemonsets…
-- column name (string): its name
-- column created_by (string): who created it
-- column reasons (strings): how it breaks isolation: privileged, hostPID, hostNetwork, hostIPC, hostPath, capabilities
-- column capabilities (strings): the capabilities it adds
-- column host_paths (strings): the host paths it mounts
-- column images (strings): its images
-- column audit_id (string): the audit ID of the request
SELECT
    timestamp AS created,
    orchestrator_namespace AS namespace,
    orchestrator_resource_type AS kind,
    orchestrator_resource_name AS name,
    user_name AS created_by,
    arrayFilter(r -> r != '', [
        if(ifNull(kubernetes_pod_spec_privileged, false), 'privileged', ''),
        if(ifNull(kubernetes_pod_spec_host_pid, false), 'hostPID', ''),
        if(ifNull(kubernetes_pod_spec_host_network, false), 'hostNetwork', ''),
        if(ifNull(kubernetes_pod_spec_host_ipc, false), 'hostIPC', ''),
        if(notEmpty(kubernetes_pod_spec_host_paths), 'hostPath', ''),
        if(notEmpty(kubernetes_pod_spec_added_capabilities), 'capabilities', '')
    ]) AS reasons,
    kubernetes_pod_spec_added_capabilities AS capabilities,
    kubernetes_pod_spec_host_paths AS host_paths,
    kubernetes_pod_spec_images AS images,
    kubernetes_audit_auditID AS audit_id
FROM events
WHERE timestamp >= {from:DateTime64(3, 'UTC')}
  AND timestamp < {to:DateTime64(3, 'UTC')}
  AND event_action = 'create'
  AND event_outcome = 'success'
  AND (ifNull(kubernetes_pod_spec_privileged, false)
       OR ifNull(kubernetes_pod_spec_host_pid, false)
       OR ifNull(kubernetes_pod_spec_host_network, false)
       OR ifNull(kubernetes_pod_spec_host_ipc, false)
       OR notEmpty(kubernetes_pod_spec_host_paths)
       OR notEmpty(kubernetes_pod_spec_added_capabilities))
ORDER BY created, audit_id
LIMIT 1 BY audit_id
