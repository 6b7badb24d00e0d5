-- title: RBAC changes by user
-- description: Who changed roles, cluster roles and their bindings in the window, busiest first: how many changes, how many the API server refused, which verbs and which objects. Changes to RBAC are how a foothold becomes cluster-admin.
-- schema: 1.1.0
-- param from: start of the window, inclusive (UTC)
-- param to: end of the window, exclusive (UTC)
-- param user: only this user; empty for everyone
-- column user (string): who made the changes
-- column changes (int): distinct requests changing RBAC objects
-- column refused (int): how many of them the API server refused
-- column first (time): the first change
-- column last (time): the last change
-- column verbs (strings): the verbs used, sorted
-- column objects (strings): the objects changed, [namespace/]resource/name, sorted
SELECT
    user_name AS user,
    uniqExact(kubernetes_audit_auditID) AS changes,
    uniqExactIf(kubernetes_audit_auditID, event_outcome = 'failure') AS refused,
    min(timestamp) AS first,
    max(timestamp) AS last,
    arraySort(groupUniqArray(event_action)) AS verbs,
    arraySort(groupUniqArray(concat(
        if(orchestrator_namespace = '', '', concat(orchestrator_namespace, '/')),
        orchestrator_resource_type, '/', orchestrator_resource_name))) AS objects
FROM events
WHERE timestamp >= {from:DateTime64(3, 'UTC')}
  AND timestamp < {to:DateTime64(3, 'UTC')}
  AND kubernetes_audit_objectRef_apiGroup = 'rbac.authorization.k8s.io'
  AND event_action IN ('create', 'update', 'patch', 'delete', 'deletecollection')
  AND ({user:String} = '' OR user_name = {user:String})
GROUP BY user
ORDER BY changes DESC, user
