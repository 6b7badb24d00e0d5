-- title: Exec into pod timeline
-- description: Every kubectl exec or attach into a pod of one namespace, oldest first: who, into which pod and container, the command, from where, and whether the API server allowed it. One row per request (the audit stages of one request collapse into one).
-- schema: 1.1.0
-- param namespace: the Kubernetes namespace
-- param from: start of the window, inclusive (UTC)
-- param to: end of the window, exclusive (UTC)
-- column timestamp (time): when the request was made
-- column user (string): who made it
-- column pod (string): the pod
-- column container (string): the container, from the request URI
-- column how (string): exec or attach
-- column command (string): the command, its arguments joined by spaces
-- column source_ip (string): where the request came from
-- column outcome (string): success or failure
-- column status (int): the HTTP status the API server answered
-- column audit_id (string): the audit ID of the request
SELECT
    timestamp,
    user_name AS user,
    orchestrator_resource_name AS pod,
    extractURLParameter(kubernetes_audit_requestURI, 'container') AS container,
    kubernetes_audit_objectRef_subresource AS how,
    arrayStringConcat(
        arrayMap(p -> decodeURLComponent(substring(p, 9)),
                 arrayFilter(p -> startsWith(p, 'command='), extractURLParameters(kubernetes_audit_requestURI))),
        ' ') AS command,
    -- '::' is the column's default: no address recorded
    if(source_ip = toIPv6('::'), '', replaceRegexpOne(toString(source_ip), '^::ffff:([0-9.]+)$', '\\1')) AS source_ip,
    event_outcome AS outcome,
    kubernetes_audit_responseStatus_code AS status,
    kubernetes_audit_auditID AS audit_id
FROM events
WHERE orchestrator_namespace = {namespace:String}
  AND timestamp >= {from:DateTime64(3, 'UTC')}
  AND timestamp < {to:DateTime64(3, 'UTC')}
  AND orchestrator_resource_type = 'pods'
  AND kubernetes_audit_objectRef_subresource IN ('exec', 'attach')
ORDER BY
    timestamp,
    kubernetes_audit_auditID,
    -- the most complete stage of a request first, so LIMIT BY keeps it
    indexOf(['ResponseComplete', 'ResponseStarted', 'Panic', 'RequestReceived'], kubernetes_audit_stage)
LIMIT 1 BY kubernetes_audit_auditID
