"""Smoke tests of the development Elasticsearch that services.sh starts: our
configuration and the root-endpoint plugin, not Elasticsearch itself.

Skipped when nothing answers at CROWSNEST_TEST_ELASTICSEARCH_URL; run
`deploy/dev/services.sh up elasticsearch` first.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid

import pytest

URL = os.environ.get("CROWSNEST_TEST_ELASTICSEARCH_URL", "http://127.0.0.1:9200").rstrip("/")


def call(method: str, path: str, body: object | None = None, ndjson: str | None = None):
    data, ctype = None, "application/json"
    if body is not None:
        data = json.dumps(body).encode()
    if ndjson is not None:
        data, ctype = ndjson.encode(), "application/x-ndjson"
    req = urllib.request.Request(URL + path, data=data, method=method, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            raw = res.read()
            return res.status, res.headers, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read() or b"null")


@pytest.fixture(scope="module", autouse=True)
def elasticsearch():
    try:
        urllib.request.urlopen(URL + "/_cluster/health", timeout=3).read()
    except OSError as e:
        pytest.skip(f"no Elasticsearch at {URL} ({e}); run deploy/dev/services.sh up elasticsearch")


def test_root_endpoint_names_version_and_product():
    status, headers, body = call("GET", "/")
    assert status == 200
    assert headers["X-Elastic-Product"] == "Elasticsearch"
    assert int(body["version"]["number"].split(".")[0]) >= 8
    assert body["cluster_name"] == "crowsnest-dev"
    assert body["tagline"] == "You Know, for Search"
    assert call("HEAD", "/")[0] == 200


def test_cluster_is_single_node_without_disk_watermarks():
    _, _, health = call("GET", "/_cluster/health")
    assert health["status"] in ("green", "yellow")
    assert health["number_of_nodes"] == 1
    _, _, settings = call("GET", "/_cluster/settings?include_defaults=true&flat_settings=true")
    assert settings["defaults"]["cluster.routing.allocation.disk.threshold_enabled"] == "false"


def test_template_bulk_search_and_wildcard_delete():
    prefix = f"crowsnest-smoke-{uuid.uuid4().hex[:8]}"
    status, _, _ = call("PUT", f"/_index_template/{prefix}", {
        "index_patterns": [f"{prefix}-*"],
        "template": {"settings": {"number_of_replicas": 0},
                     "mappings": {"properties": {"ts": {"type": "date_nanos"}, "ip": {"type": "ip"},
                                                 "kind": {"type": "keyword"}, "labels": {"type": "flattened"}}}},
    })
    assert status == 200
    lines = []
    for i in range(10):
        lines.append(json.dumps({"create": {"_index": f"{prefix}-1", "_id": str(i)}}))
        lines.append(json.dumps({"ts": "2026-01-02T03:04:05.123456789Z", "ip": "2001:db8::1",
                                 "kind": f"k{i % 2}", "labels": {"pod": f"p{i}"}}))
    status, _, bulk = call("POST", "/_bulk?refresh=true", ndjson="\n".join(lines) + "\n")
    assert status == 200 and not bulk["errors"]
    # The same ids again: create refuses them one by one (per-item outcomes).
    _, _, again = call("POST", "/_bulk?refresh=true", ndjson="\n".join(lines) + "\n")
    assert again["errors"] and {i["create"]["status"] for i in again["items"]} == {409}
    _, _, found = call("POST", f"/{prefix}-*/_search", {"size": 0, "aggs": {"k": {"terms": {"field": "kind"}}}})
    assert found["hits"]["total"]["value"] == 10
    assert sorted(b["key"] for b in found["aggregations"]["k"]["buckets"]) == ["k0", "k1"]
    assert call("DELETE", f"/{prefix}-*")[0] == 200
    assert call("DELETE", f"/_index_template/{prefix}")[0] == 200
