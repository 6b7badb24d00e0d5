-- title: Alerts by rule per hour
-- description: How many alerts each rule raised in each hour of the window, with how many distinct entities (pods, users) they concern and in which namespaces: the shape of an incident, and the rules that are noise.
-- schema: 1.1.0
-- param from: start of the window, inclusive (UTC)
-- param to: end of the window, exclusive (UTC)
-- column hour (time): the hour the alerts fall in (UTC)
-- column rule_id (string): the rule that fired
-- column rule_name (string): its name
-- column rule_level (string): its level (informational, low, medium, high, critical)
-- column alerts (int): distinct alerts in the hour
-- column entities (int): distinct entities (pods, users) they concern
-- column namespaces (strings): the Kubernetes namespaces they concern, sorted
SELECT
    toStartOfHour(timestamp) AS hour,
    rule_id,
    rule_name,
    rule_level,
    uniqExact(event_id) AS alerts,
    uniqExact(crowsnest_alert_entity) AS entities,
    -- alerts about no namespace (users, nodes) add none, rather than ''
    arraySort(groupUniqArrayIf(orchestrator_namespace, orchestrator_namespace != '')) AS namespaces
FROM alerts
WHERE timestamp >= {from:DateTime64(3, 'UTC')}
  AND timestamp < {to:DateTime64(3, 'UTC')}
GROUP BY hour, rule_id, rule_name, rule_level
ORDER BY hour, alerts DESC, rule_id
