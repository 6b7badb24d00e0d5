package query

// elasticHunts lists the Elasticsearch implementation of every hunt, by
// the hunt's name: a new hunt is its SQL file in sinks/clickhouse/hunts,
// one file here (elastic_<name>.go) and one line below. Catalog refuses a
// hunt missing from either side.
func elasticHunts() map[string]elasticHunt {
	return map[string]elasticHunt{
		"alerts_by_rule_per_hour":      elasticAlertsByRulePerHour,
		"exec_into_pod_timeline":       elasticExecIntoPodTimeline,
		"privileged_workloads":         elasticPrivilegedWorkloads,
		"rbac_changes_by_user":         elasticRBACChangesByUser,
		"top_talkers_new_destinations": elasticTopTalkersNewDestinations,
	}
}
