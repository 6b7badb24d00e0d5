-- title: Top talkers to new destinations
-- description: Per pod, the network destinations (address and port) contacted in the window that the same pod did not contact in the baseline before it, busiest pods first: a new peer is how exfiltration and command-and-control look from the inside.
-- schema: 1.1.0
-- param from: start of the window, inclusive (UTC)
-- param to: end of the window, exclusive (UTC)
-- param baseline_from: start of the baseline, which ends where the window starts (UTC)
-- param limit: how many pods to list
-- column namespace (string): the pod's namespace
-- column pod (string): the pod
-- column new_destinations (int): destinations (address and port) not seen from the pod in the baseline
-- column connections (int): connections to them in the window
-- column first_seen (time): the first of those connections
-- column top_destinations (strings): the five busiest new destinations, address:port, busiest first
WITH
    recent AS (
        SELECT
            orchestrator_namespace AS namespace,
            orchestrator_resource_name AS pod,
            destination_ip AS ip,
            destination_port AS port,
            uniqExact(event_id) AS conns,
            min(timestamp) AS first_seen
        FROM events
        WHERE timestamp >= {from:DateTime64(3, 'UTC')}
          AND timestamp < {to:DateTime64(3, 'UTC')}
          AND has(event_category, 'network')
          AND destination_ip != toIPv6('::')
          AND orchestrator_resource_name != ''
        GROUP BY namespace, pod, ip, port
    ),
    known AS (
        SELECT DISTINCT
            orchestrator_namespace AS namespace,
            orchestrator_resource_name AS pod,
            destination_ip AS ip,
            destination_port AS port
        FROM events
        WHERE timestamp >= {baseline_from:DateTime64(3, 'UTC')}
          AND timestamp < {from:DateTime64(3, 'UTC')}
          AND has(event_category, 'network')
          AND destination_ip != toIPv6('::')
          AND orchestrator_resource_name != ''
    )
SELECT
    namespace,
    pod,
    count() AS new_destinations,
    sum(conns) AS connections,
    min(first_seen) AS first_seen,
    arraySlice(
        arrayMap(d -> d.2,
                 arraySort(d -> (-d.1, d.2), groupArray((conns, concat(
                     replaceRegexpOne(toString(ip), '^::ffff:([0-9.]+)$', '\\1'), ':', toString(port)))))),
        1, 5) AS top_destinations
FROM recent
LEFT ANTI JOIN known USING (namespace, pod, ip, port)
GROUP BY namespace, pod
ORDER BY connections DESC, namespace, pod
LIMIT {limit:UInt32}
