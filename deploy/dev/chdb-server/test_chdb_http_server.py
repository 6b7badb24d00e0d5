"""The server against ClickHouse's HTTP interface as clickhouse-go/v2 (Protocol HTTP) uses it."""

from __future__ import annotations

import gzip
import http.client
import json
import struct
import uuid
from urllib.parse import quote, urlencode

import compressed_blocks
import pytest

# clickhouse-go v2.51.0 sends this in every request (ClientTCPProtocolVersion).
GO_CLIENT_REVISION = "54460"


def table_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


class NativeReader:
    """Just enough of a Native decoder for the tests' own checks."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        assert len(out) == n, "stream ended early"
        self.pos += n
        return out

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def string(self) -> str:
        return self.take(self.varint()).decode()


# ---------------------------------------------------------------- health and hello


def test_ping_and_root(server):
    for method, path in [("GET", "/ping"), ("GET", "/"), ("GET", "/replicas_status")]:
        res = server.request(method, path)
        assert (res.status, res.body) == (200, b"Ok.\n"), path
    assert server.request("HEAD", "/ping").status == 200
    assert server.request("GET", "/nope").status == 404


def test_version_is_current_clickhouse(server):
    res = server.request("GET", "/?query=" + quote("SELECT version()"))
    assert res.status == 200
    major = int(res.text.split(".")[0])
    assert major >= 24, res.text


def test_response_headers(server):
    res = server.request("GET", "/?" + urlencode({"query": "SELECT 1", "query_id": "q-123"}))
    assert res.status == 200
    assert res.headers["X-ClickHouse-Query-Id"] == "q-123"
    assert res.headers["X-ClickHouse-Format"] == "TabSeparated"
    assert res.headers["Content-Type"].startswith("text/tab-separated-values")
    assert res.headers["X-ClickHouse-Server-Display-Name"]
    assert res.headers["X-ClickHouse-Timezone"]
    summary = json.loads(res.headers["X-ClickHouse-Summary"])
    assert {"read_rows", "read_bytes", "written_rows", "written_bytes", "elapsed_ns"} <= summary.keys()
    generated = server.request("GET", "/?query=SELECT%201").headers["X-ClickHouse-Query-Id"]
    assert uuid.UUID(generated)


def test_driver_hello_in_native_with_protocol_revision(server):
    """clickhouse-go's connect: the hello query read as Native at its protocol revision."""
    res = server.query(
        "SELECT displayName(), version(), revision(), timezone()",
        default_format="Native", client_protocol_version=GO_CLIENT_REVISION,
    )
    assert res.status == 200, res.text
    assert res.headers["Content-Type"] == "application/octet-stream"
    assert res.headers["X-ClickHouse-Format"] == "Native"
    r = NativeReader(res.body)
    assert r.take(8) == b"\x01\x00\x02\xff\xff\xff\xff\x00"  # BlockInfo
    assert (r.varint(), r.varint()) == (4, 1)
    values = []
    for expected_type in ("String", "String", "UInt32", "String"):
        r.string()
        assert r.string() == expected_type
        assert r.take(1) == b"\x00"  # no custom serialization
        values.append(struct.unpack("<I", r.take(4))[0] if expected_type == "UInt32" else r.string())
    assert r.pos == len(res.body)
    assert int(values[1].split(".")[0]) >= 24
    assert values[2] > 54000


def test_ping_query_names_its_column_1(server):
    res = server.query("SELECT 1", default_format="Native")
    r = NativeReader(res.body)
    assert (r.varint(), r.varint()) == (1, 1)
    assert (r.string(), r.string()) == ("1", "UInt8")


# ---------------------------------------------------------------- data in and out


def test_json_each_row_roundtrip(server):
    t = table_name("json")
    server.ok(f"CREATE TABLE {t} (id UInt32, name String, ts DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY id")
    rows = [{"id": i, "name": f"n{i}", "ts": f"2026-01-02 03:04:05.{i:03d}"} for i in range(1, 4)]
    # Query in the URL, data in the body.
    res = server.request("POST", "/?" + urlencode({"query": f"INSERT INTO {t} FORMAT JSONEachRow"}),
                         "\n".join(json.dumps(r) for r in rows[:2]).encode())
    assert res.status == 200, res.text
    assert json.loads(res.headers["X-ClickHouse-Summary"])["written_rows"] == "2"
    # Query and data in the body.
    assert server.query(f"INSERT INTO {t} FORMAT JSONEachRow\n{json.dumps(rows[2])}").status == 200
    res = server.request("GET", "/?" + urlencode({"query": f"SELECT * FROM {t} ORDER BY id FORMAT JSONEachRow"}))
    assert res.status == 200
    assert res.headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert [json.loads(line) for line in res.text.splitlines()] == rows


def test_native_insert_of_a_block_chdb_produced(server):
    """The body of a clickhouse-go batch: one Native block, query in the URL."""
    t = table_name("native")
    columns = ("ts DateTime64(3, 'UTC'), kind LowCardinality(String), labels Map(String, String), "
               "tags Array(String), ip Nullable(IPv6), n UInt64")
    server.ok(f"CREATE TABLE {t} ({columns}) ENGINE = MergeTree ORDER BY (kind, ts)")
    source = ("SELECT addMilliseconds(toDateTime64('2026-01-02 03:04:05', 3, 'UTC'), number) AS ts, "
              "concat('kind-', toString(number % 7)) AS kind, map('pod', toString(number)) AS labels, "
              "['a', toString(number)] AS tags, "
              "if(number % 3 = 0, NULL, toIPv6(concat('2001:db8::', hex(number)))) AS ip, number AS n "
              "FROM numbers(5000)")
    block = server.query(source, default_format="Native")
    assert block.status == 200 and block.body
    res = server.request("POST", "/?" + urlencode({"query": f"INSERT INTO {t} (ts, kind, labels, tags, ip, n) FORMAT Native"}),
                         block.body, {"Content-Type": "application/octet-stream"})
    assert res.status == 200, res.text
    assert res.body == b""
    got = server.ok(f"SELECT count(), sum(n), countIf(ip IS NULL), uniqExact(kind), "
                    f"sum(length(tags)), max(ts) FROM {t}")
    assert got == "5000\t12497500\t1667\t7\t10000\t2026-01-02 03:04:09.999\n"
    expected = server.ok(f"SELECT groupArray(cityHash64(*)) FROM ({source} ORDER BY n)")
    assert server.ok(f"SELECT groupArray(cityHash64(*)) FROM (SELECT * FROM {t} ORDER BY n)") == expected


def test_chunked_request_body(server):
    """Go's http client sends a batch from an io.Pipe, chunked."""
    t = table_name("chunked")
    server.ok(f"CREATE TABLE {t} (n UInt64) ENGINE = MergeTree ORDER BY n")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", "/?" + urlencode({"query": f"INSERT INTO {t} FORMAT TSV"}))
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for chunk in (b"1\n2\n", b"3\n"):
        conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    conn.send(b"0\r\n\r\n")
    res = conn.getresponse()
    assert res.status == 200, res.read()
    res.read()
    # The same connection serves the next request (keep-alive).
    conn.request("POST", "/", f"SELECT sum(n) FROM {t}".encode())
    assert conn.getresponse().read() == b"6\n"
    conn.close()


def test_select_native_at_protocol_revision_matches_chdb_columns(server):
    """The framing added for clickhouse-go, checked column by column against chDB's own output."""
    exprs = {
        "ts": "toDateTime64('2026-01-02 03:04:05.678', 3, 'UTC') + number",
        "kind": "toLowCardinality(concat('k', toString(number % 3)))",
        "lcn": "CAST(if(number % 2 = 0, NULL, 'x'), 'LowCardinality(Nullable(String))')",
        "labels": "map('a', toString(number), 'b', 'c')",
        "tags": "[toString(number), 'z']",
        "nested": "[[number], [number, number]]",
        "ip": "if(number % 2 = 0, NULL, toIPv6('::1'))",
        "tup": "tuple(number, toString(number))",
        "fs": "toFixedString('ab', 2)",
        "dec": "toDecimal64(number, 4)",
        "u": "toUUID('61f0c404-5cb3-11e7-907b-a6006ad3dba0')",
        "e": "CAST('a', 'Enum8(\\'a\\' = 1, \\'b\\' = 2)')",
        "lctags": "CAST([toString(number)], 'Array(LowCardinality(String))')",
        "b": "number % 2 = 0",
    }
    select = ", ".join(f"{e} AS {n}" for n, e in exprs.items())
    # One block of 5 rows, so that the per-column outputs line up.
    sql = f"SELECT {select} FROM numbers(5) SETTINGS max_block_size = 100"
    framed = server.query(sql, default_format="Native", client_protocol_version=GO_CLIENT_REVISION)
    assert framed.status == 200, framed.text
    server.ok(f"CREATE TABLE IF NOT EXISTS fixed_rows ENGINE = Memory AS {sql}")

    r = NativeReader(framed.body)
    assert r.take(8) == b"\x01\x00\x02\xff\xff\xff\xff\x00"
    assert (r.varint(), r.varint()) == (len(exprs), 5)
    for name in exprs:
        assert r.string() == name
        type_name = r.string()
        assert r.take(1) == b"\x00"
        # chDB's own single-column block: header, then exactly this column's data.
        single = server.query(f"SELECT {name} FROM fixed_rows", default_format="Native").body
        s = NativeReader(single)
        assert (s.varint(), s.varint(), s.string(), s.string()) == (1, 5, name, type_name)
        column_data = single[s.pos :]
        assert r.take(len(column_data)) == column_data, name
    assert r.pos == len(framed.body)


def test_empty_native_result_still_names_its_columns(server):
    res = server.query("SELECT number AS n, toString(number) AS s FROM numbers(10) WHERE n > 100",
                       default_format="Native", client_protocol_version=GO_CLIENT_REVISION)
    assert res.status == 200
    r = NativeReader(res.body)
    r.take(8)
    assert (r.varint(), r.varint()) == (2, 0)
    assert (r.string(), r.string(), r.take(1)) == ("n", "UInt64", b"\x00")
    assert (r.string(), r.string(), r.take(1)) == ("s", "String", b"\x00")


def test_describe_for_batch_columns(server):
    """PrepareBatch without known columns runs DESCRIBE TABLE and scans 7 columns."""
    t = table_name("desc")
    server.ok(f"CREATE TABLE {t} (a UInt8, b String MATERIALIZED 'x') ENGINE = MergeTree ORDER BY a")
    res = server.query(f"DESCRIBE TABLE {t}", default_format="Native", client_protocol_version=GO_CLIENT_REVISION)
    r = NativeReader(res.body)
    r.take(8)
    assert (r.varint(), r.varint()) == (7, 2)


def test_query_parameters(server):
    assert server.ok("SELECT {x:UInt8} + 1, {s:String}", param_x="41", param_s="it's") == "42\tit\\'s\n"


def test_url_query_continued_by_body(server):
    res = server.request("POST", "/?" + urlencode({"query": "SELECT"}), b" 40 + 2")
    assert res.text == "42\n"


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("method,sql,status,code,name", [
    ("POST", "SELECT * FROM no_such_table", 404, 60, "UNKNOWN_TABLE"),
    ("POST", "SELEC 1", 400, 62, "SYNTAX_ERROR"),
    ("POST", "SELECT throwIf(1, 'boom')", 500, 395, "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO"),
    ("GET", "CREATE TABLE never (a UInt8) ENGINE = Memory", 500, 164, "READONLY"),
])
def test_errors_in_clickhouse_format(server, method, sql, status, code, name):
    res = server.request(method, "/?" + urlencode({"query": sql}), b"" if method == "POST" else None)
    assert res.status == status, res.text
    assert res.headers["X-ClickHouse-Exception-Code"] == str(code)
    assert res.text.startswith(f"Code: {code}. DB::Exception: ")
    assert f"({name})" in res.text
    assert "(version " in res.text


def test_empty_query_is_an_error(server):
    res = server.request("POST", "/", b"")
    assert res.status == 400
    assert res.headers["X-ClickHouse-Exception-Code"] == "62"


def test_unknown_database(server):
    res = server.query("SELECT 1", database="no_such_db")
    assert res.status == 404
    assert res.headers["X-ClickHouse-Exception-Code"] == "81"


def test_session_survives_errors(server):
    server.query("SELECT * FROM no_such_table")
    assert server.ok("SELECT 1") == "1\n"


# ---------------------------------------------------------------- settings, databases


def test_settings_as_url_parameters_apply_to_that_query_only(server):
    res = server.query("SELECT number FROM numbers(10)", max_result_rows="1", result_overflow_mode="throw")
    assert res.status != 200
    assert res.headers["X-ClickHouse-Exception-Code"] == "396"  # TOO_MANY_ROWS_OR_BYTES
    assert server.ok("SELECT toString(getSetting('max_threads'))", max_threads="1") == "1\n"
    assert server.ok("SELECT toString(getSetting('max_result_rows'))") == "0\n"
    assert server.ok("SELECT count() FROM numbers(10)") == "10\n"


def test_client_only_parameters_are_accepted(server):
    res = server.query(
        "SELECT 1", client_protocol_version=GO_CLIENT_REVISION, session_id="s1", session_timeout="60",
        wait_end_of_query="1", query_id="abc", async_insert="1", wait_for_async_insert="1",
        async_insert_busy_timeout_ms="100", enable_http_compression="0", buffer_size="1000", quota_key="q",
    )
    assert res.status == 200, res.text


def test_unknown_setting_is_an_error(server):
    res = server.query("SELECT 1", no_such_setting="1")
    assert res.status == 404
    assert res.headers["X-ClickHouse-Exception-Code"] == "115"


def test_set_statement_does_not_outlive_its_request(server):
    server.ok("SET max_threads = 1")
    assert server.ok("SELECT toString(getSetting('max_threads'))") != "1\n"


def test_database_parameter_and_create_database(server):
    db = table_name("db")
    server.ok(f"CREATE DATABASE {db}")
    server.ok("CREATE TABLE t (a UInt8) ENGINE = MergeTree ORDER BY a", database=db)
    server.ok("INSERT INTO t VALUES (7)", database=db)
    assert server.ok("SELECT currentDatabase(), sum(a) FROM t", database=db) == f"{db}\t7\n"
    assert server.ok("SELECT currentDatabase()") == "default\n"
    # A USE sent as a query does not change the next request's database.
    server.ok(f"USE {db}")
    assert server.ok("SELECT currentDatabase()") == "default\n"


def test_insert_deduplication_token(server):
    t = table_name("dedup")
    server.ok(f"CREATE TABLE {t} (n UInt64) ENGINE = MergeTree ORDER BY n "
              "SETTINGS non_replicated_deduplication_window = 100")
    block = server.query("SELECT number AS n FROM numbers(10)", default_format="Native").body
    path = "/?" + urlencode({"query": f"INSERT INTO {t} (n) FORMAT Native", "insert_deduplication_token": "tok-1"})
    for _ in range(2):
        assert server.request("POST", path, block).status == 200
    assert server.ok(f"SELECT count() FROM {t}") == "10\n"
    other = "/?" + urlencode({"query": f"INSERT INTO {t} (n) FORMAT Native", "insert_deduplication_token": "tok-2"})
    assert server.request("POST", other, block).status == 200
    assert server.ok(f"SELECT count() FROM {t}") == "20\n"


# ---------------------------------------------------------------- compression


def test_gzip_request_and_response(server):
    t = table_name("gz")
    server.ok(f"CREATE TABLE {t} (n UInt64) ENGINE = MergeTree ORDER BY n")
    res = server.request("POST", "/?" + urlencode({"query": f"INSERT INTO {t} FORMAT TSV"}),
                         gzip.compress(b"1\n2\n3\n"), {"Content-Encoding": "gzip"})
    assert res.status == 200, res.text
    res = server.request("POST", "/?enable_http_compression=1", f"SELECT sum(n) FROM {t}".encode(),
                         {"Accept-Encoding": "gzip"})
    assert res.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(res.body) == b"6\n"


@pytest.mark.parametrize("method", ["LZ4", "ZSTD"])
def test_clickhouse_compressed_blocks_both_ways(server, method):
    """clickhouse-go with CompressionLZ4/ZSTD: compress=1, decompress=1, checksummed blocks."""
    t = table_name("cb")
    server.ok(f"CREATE TABLE {t} (n UInt64) ENGINE = MergeTree ORDER BY n")
    block = server.query("SELECT number AS n FROM numbers(1000)", default_format="Native").body
    body = compressed_blocks.compress(block, compressed_blocks.method_by_name(method))
    params = {"query": f"INSERT INTO {t} FORMAT Native", "compress": "1", "decompress": "1",
              "network_compression_method": method}
    assert server.request("POST", "/?" + urlencode(params), body).status == 200
    res = server.request("POST", "/?" + urlencode({"compress": "1", "network_compression_method": method}),
                         f"SELECT sum(n) FROM {t}".encode())
    assert res.status == 200
    assert res.body[16] == compressed_blocks.method_by_name(method)
    assert compressed_blocks.decompress(res.body) == b"499500\n"


def test_corrupt_compressed_block_is_rejected(server):
    body = bytearray(compressed_blocks.compress(b"SELECT 1", compressed_blocks.METHOD_LZ4))
    body[-1] ^= 0xFF
    res = server.request("POST", "/?decompress=1", bytes(body))
    assert res.headers["X-ClickHouse-Exception-Code"] == "40"  # CHECKSUM_DOESNT_MATCH


def test_external_tables_are_refused_plainly(server):
    res = server.request("POST", "/?query=SELECT%201", b"--x--", {"Content-Type": "multipart/form-data; boundary=x"})
    assert res.status == 501
    assert res.headers["X-ClickHouse-Exception-Code"] == "48"


# ---------------------------------------------------------------- lifecycle


def test_sigterm_stops_cleanly_and_data_persists(tmp_path):
    from conftest import ServerProcess

    srv = ServerProcess(tmp_path / "data", tmp_path / "server.log")
    srv.start()
    assert srv.pid_file.read_text().strip() == str(srv.proc.pid)
    srv.ok("CREATE TABLE kept (n UInt64) ENGINE = MergeTree ORDER BY n")
    srv.ok("INSERT INTO kept SELECT number FROM numbers(100)")
    assert srv.stop() == 0
    assert not srv.pid_file.exists()
    assert "stopped" in srv.log_path.read_text()

    srv.start()
    try:
        assert srv.ok("SELECT count() FROM kept") == "100\n"
    finally:
        assert srv.stop() == 0


def test_concurrent_clients_share_one_session(server):
    """A threading HTTP server in front of one chDB session: requests queue on its lock."""
    from concurrent.futures import ThreadPoolExecutor

    t = table_name("conc")
    server.ok(f"CREATE TABLE {t} (w UInt8, i UInt32) ENGINE = MergeTree ORDER BY (w, i)")

    def worker(w: int) -> list[str]:
        out = []
        for i in range(20):
            assert server.query(f"INSERT INTO {t} VALUES ({w}, {i})").status == 200
            out.append(server.ok(f"SELECT count() FROM {t} WHERE w = {w}", max_threads="1"))
        return out

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(worker, range(8)))
    for counts in results:
        assert counts == [f"{i + 1}\n" for i in range(20)]
    assert server.ok(f"SELECT count(), uniqExact(w) FROM {t}") == "160\t8\n"
    assert server.ok("SELECT toString(getSetting('max_threads'))") != "1\n"
