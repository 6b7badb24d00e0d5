"""Development server for the ClickHouse engine, speaking ClickHouse's HTTP interface.

No current ClickHouse server can be installed on crowsnest's machines, but the
chdb-core package carries the ClickHouse engine in-process. This server puts
the subset of ClickHouse's HTTP interface that clickhouse-go/v2 uses with
``Protocol: clickhouse.HTTP`` in front of one persistent chDB session, so the
ClickHouse sink and its tests run against the real engine: real SQL, real
MergeTree tables, real Native format, real error codes.

It is for tests and local runs only. It has no users, grants, TLS, native TCP
protocol, replication or sessions; docs/services.md lists every gap.

Run: python chdb_http_server.py --port 8123 --data-dir .services/clickhouse/data
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import logging
import lzma
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import chdb
import lz4.frame
import zstandard
from chdb import session as chdb_session

import compressed_blocks
import native_format

log = logging.getLogger("chdb-server")

# URL parameters that steer the HTTP layer or the client and are not engine
# settings; the real server consumes them the same way.
_CLIENT_PARAMS = {
    "query", "database", "default_format", "user", "password", "quota_key",
    "query_id", "session_id", "session_timeout", "session_check",
    "compress", "decompress", "client_protocol_version", "buffer_size",
    "wait_end_of_query", "role", "stacktrace", "readonly",
    # Consumed here: they decide how the response is compressed.
    "enable_http_compression", "http_zlib_compression_level",
    "network_compression_method", "network_zstd_compression_level",
    "http_native_compression_disable_checksumming_on_decompress",
    # Accepted and ignored: inserts are always synchronous here.
    "async_insert", "wait_for_async_insert",
}
_IGNORED_PARAM_PREFIXES = ("async_insert_",)

# chdb-core's Python wrapper turns these format names into Python objects.
_PYTHON_ONLY_FORMATS = {"dataframe", "datastore", "arrowtable", "debug"}

_READ_KEYWORDS = {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "SET", "USE"}

_INSERT_WITH_FORMAT = re.compile(
    r"^(?P<statement>\s*INSERT\b.*?)\bFORMAT\s+(?P<format>[A-Za-z0-9_]+)(?P<rest>.*)\Z", re.S | re.I
)
_TRAILING_FORMAT = re.compile(
    r"\bFORMAT\s+(?P<format>[A-Za-z0-9_]+)\s*(?:SETTINGS\b[^;]*)?;?\s*\Z", re.S | re.I
)
_EXCEPTION_CODE = re.compile(r"Code: (\d+)\. ")

# exceptionCodeToHTTPStatus in ClickHouse's src/Server/HTTP, by error name.
_STATUS_BY_ERROR_NAME = {
    "REQUIRED_PASSWORD": 401,
    **{n: 403 for n in ("UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED", "SET_NON_GRANTED_ROLE", "ACCESS_DENIED")},
    **{
        n: 400
        for n in (
            "BAD_ARGUMENTS", "CANNOT_COMPILE_REGEXP", "CANNOT_PARSE_TEXT", "CANNOT_PARSE_ESCAPE_SEQUENCE",
            "CANNOT_PARSE_QUOTED_STRING", "CANNOT_PARSE_DATE", "CANNOT_PARSE_DATETIME", "CANNOT_PARSE_NUMBER",
            "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING", "CANNOT_PARSE_IPV4", "CANNOT_PARSE_IPV6",
            "CANNOT_PARSE_INPUT_ASSERTION_FAILED", "CANNOT_PARSE_UUID", "DUPLICATE_COLUMN", "ILLEGAL_COLUMN",
            "UNKNOWN_ELEMENT_IN_AST", "UNKNOWN_TYPE_OF_AST_NODE", "THERE_IS_NO_COLUMN", "TOO_DEEP_AST",
            "TOO_BIG_AST", "UNEXPECTED_AST_STRUCTURE", "SYNTAX_ERROR", "INCORRECT_DATA", "TYPE_MISMATCH",
            "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
        )
    },
    **{
        n: 404
        for n in (
            "UNKNOWN_TABLE", "UNKNOWN_FUNCTION", "UNKNOWN_IDENTIFIER", "UNKNOWN_TYPE", "UNKNOWN_STORAGE",
            "UNKNOWN_DATABASE", "UNKNOWN_SETTING", "UNKNOWN_DIRECTION_OF_SORTING", "UNKNOWN_AGGREGATE_FUNCTION",
            "UNKNOWN_FORMAT", "UNKNOWN_DATABASE_ENGINE", "UNKNOWN_TYPE_OF_QUERY", "UNKNOWN_ROLE",
        )
    },
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    "SOCKET_TIMEOUT": 503,
    "CANNOT_OPEN_FILE": 503,
    "CANNOT_SCHEDULE_TASK": 503,
    "HTTP_LENGTH_REQUIRED": 411,
    "TIMEOUT_EXCEEDED": 408,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}


class QueryError(Exception):
    """An error reported to the client in ClickHouse's format."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Insert:
    statement: str  # INSERT ... without the FORMAT clause
    format: str
    data: bytes


@dataclass
class Request:
    text: str | None  # the query, when it is not an INSERT with data
    insert: Insert | None
    database: str
    default_format: str
    settings: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    readonly_reason: str = ""  # non-empty when only reading queries may run
    client_revision: int = 0


@dataclass
class Result:
    body: bytes
    format: str
    read_rows: int = 0
    read_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    result_rows: int = 0


class Engine:
    """One persistent chDB session. Every call holds the lock: the session runs one statement at a time."""

    def __init__(self, data_dir: str):
        os.makedirs(data_dir, exist_ok=True)
        self._session = chdb_session.Session(data_dir)
        self._lock = threading.Lock()
        self._closed = False
        self._current_database: str | None = None
        row = self._text("SELECT version(), timezone(), displayName(), revision()").rstrip("\n").split("\t")
        self.version, self.timezone, self.display_name = row[0], row[1], row[2]
        self.revision = int(row[3])
        pairs = self._text(
            "SELECT number, errorCodeToName(number) FROM numbers(2000) WHERE errorCodeToName(number) != ''"
        ).split("\n")
        self.error_names = {int(c): n for c, n in (p.split("\t") for p in pairs if p)}
        self._codes = {n: c for c, n in self.error_names.items()}

    def code(self, name: str) -> int:
        return self._codes.get(name) or self._codes["STD_EXCEPTION"]

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._session.close()

    def _text(self, sql: str) -> str:
        return self._session.query(sql, "TabSeparated").bytes().decode()

    def execute(self, req: Request) -> Result:
        with self._lock:
            if self._closed:
                raise QueryError(self.code("ABORTED"), "Server is shutting down")
            return self._execute_locked(req)

    def _execute_locked(self, req: Request) -> Result:
        text = req.text if req.text is not None else req.insert.statement
        keyword = first_keyword(text)
        if req.readonly_reason and (req.insert is not None or keyword not in _READ_KEYWORDS):
            raise QueryError(self.code("READONLY"), f"Cannot execute query in readonly mode. {req.readonly_reason}")
        # Settings a request changes (URL parameters, a SET statement) last for
        # that request only, as over ClickHouse's HTTP without a session.
        changed_names = list(req.settings) + (set_statement_names(text) if keyword == "SET" else [])
        before = self._changed_settings() if changed_names else None
        try:
            self._use_database(req.database)
            for name, value in req.settings.items():
                self._run(f"SET {quote_identifier(name)} = {quote_string(value)}")
            if req.insert is not None:
                return self._insert(req.insert)
            return self._query(req, text, keyword)
        finally:
            if keyword == "USE":
                self._current_database = None
            if before is not None:
                self._restore_settings(changed_names, before)

    def _run(self, sql: str, fmt: str = "TabSeparated", params: dict[str, str] | None = None):
        try:
            return self._session.query(sql, fmt, params=params or None)
        except Exception as e:  # chdb raises ChdbError/RuntimeError carrying ClickHouse's message
            raise self.error_from(e) from None

    def error_from(self, e: Exception) -> QueryError:
        text = str(e)
        m = _EXCEPTION_CODE.search(text)
        if m is None:
            return QueryError(self.code("STD_EXCEPTION"), text)
        return QueryError(int(m.group(1)), text[m.start() :])

    def _use_database(self, database: str) -> None:
        if database != self._current_database:
            self._current_database = None
            self._run(f"USE {quote_identifier(database)}")
            self._current_database = database

    def _changed_settings(self) -> dict[str, str]:
        out = self._run("SELECT name, value FROM system.settings WHERE changed AND name != 'database'", "JSONCompactEachRow")
        return dict(json.loads(line) for line in out.bytes().decode().splitlines() if line)

    def _restore_settings(self, names: list[str], before: dict[str, str]) -> None:
        # Only SET statements here: a query could itself trip the settings being undone.
        for name in dict.fromkeys(names):
            value = quote_string(before[name]) if name in before else "DEFAULT"
            try:
                self._run(f"SET {quote_identifier(name)} = {value}")
            except QueryError as e:  # an unknown name the request's own SET already failed on
                log.debug("restore setting %s: %s", name, e.message)

    def _insert(self, ins: Insert) -> Result:
        try:
            with self._session.send_insert(ins.statement, ins.format) as stream:
                if ins.data:
                    stream.append(ins.data)
                res = stream.finish()
        except Exception as e:
            raise self.error_from(e) from None
        return Result(b"", ins.format, written_rows=res.rows_written, written_bytes=res.bytes_written)

    def _query(self, req: Request, text: str, keyword: str) -> Result:
        if req.default_format.lower() in _PYTHON_ONLY_FORMATS:
            raise QueryError(self.code("UNKNOWN_FORMAT"), f"Unknown format {req.default_format}")
        m = _TRAILING_FORMAT.search(text)
        fmt = m.group("format") if m else req.default_format
        if fmt.lower() in _PYTHON_ONLY_FORMATS:
            raise QueryError(self.code("UNKNOWN_FORMAT"), f"Unknown format {fmt}")
        res = self._run(text, req.default_format, req.params)
        body = res.bytes()
        out = Result(
            body, fmt,
            read_rows=res.rows_read(), read_bytes=res.bytes_read(),
            written_rows=res.rows_written(), written_bytes=res.bytes_written(),
        )
        if fmt == "Native":
            if not body and keyword in ("SELECT", "WITH"):
                # ClickHouse sends a header block for an empty result; chDB sends nothing.
                columns = self._describe(text, m, req.params)
                out.body = native_format.header_block(columns, req.client_revision) if columns else b""
            else:
                try:
                    out.body, out.result_rows = native_format.add_protocol_framing(body, req.client_revision)
                except native_format.NativeFormatError as e:
                    raise QueryError(self.code("NOT_IMPLEMENTED"), f"crowsnest chdb-server: {e}") from None
        return out

    def _describe(self, text: str, format_match: re.Match | None, params: dict[str, str]) -> list[tuple[str, str]]:
        inner = text[: format_match.start()] if format_match else text
        inner = inner.strip().rstrip(";")
        try:
            out = self._run(f"DESCRIBE TABLE ({inner})", "JSONCompactEachRow", params).bytes().decode()
        except QueryError:
            return []
        return [tuple(json.loads(line)[:2]) for line in out.splitlines() if line]


def first_keyword(text: str) -> str:
    """The statement's first keyword, upper-cased, past comments and opening parentheses."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace() or c == "(":
            i += 1
        elif text.startswith("--", i) or c == "#":
            nl = text.find("\n", i)
            i = n if nl < 0 else nl + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            break
    m = re.match(r"[A-Za-z_]+", text[i:])
    return m.group(0).upper() if m else ""


def set_statement_names(text: str) -> list[str]:
    """The setting names of ``SET a = 1, b = 'x'``; empty for other SET forms (SET ROLE ...)."""
    body = re.sub(r"^\s*SET\b", "", text.strip().rstrip(";"), count=1, flags=re.I)
    names = []
    for assignment in native_format.split_top_level(body):
        name = assignment.split("=", 1)[0].strip().strip("`")
        if "=" in assignment and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            names.append(name)
    return names


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def split_query(url_query: str | None, body: bytes) -> tuple[str | None, Insert | None]:
    """Splits what the client sent into a query text or an INSERT statement with its data.

    As in ClickHouse, the URL ``query`` parameter is the start of the query and
    the body continues it; for ``INSERT ... FORMAT X`` the body is the data.
    """
    if url_query is not None and body:
        m = _INSERT_WITH_FORMAT.match(url_query)
        if m and not m.group("rest").strip(" \t\r\n;"):
            return None, Insert(m.group("statement"), m.group("format"), body)
    if url_query is not None:
        text_bytes = url_query.encode() + (b"\n" + body if body else b"")
    else:
        text_bytes = body
    m = _INSERT_WITH_FORMAT.match(text_bytes.decode("utf-8", "surrogateescape"))
    if m and m.group("rest").strip():
        # Data inline after "FORMAT X": it starts after the rest of that line.
        rest = m.group("rest").lstrip(" \t")
        if rest.startswith("\r\n"):
            rest = rest[2:]
        elif rest.startswith("\n"):
            rest = rest[1:]
        return None, Insert(m.group("statement"), m.group("format"), rest.encode("utf-8", "surrogateescape"))
    if m:
        return None, Insert(m.group("statement"), m.group("format"), b"")
    try:
        return text_bytes.decode("utf-8"), None
    except UnicodeDecodeError:
        return text_bytes.decode("utf-8", "replace"), None


_CONTENT_TYPES = [
    (("TabSeparated", "TSV"), "text/tab-separated-values; charset=UTF-8"),
    (("CSVWithNames",), "text/csv; charset=UTF-8; header=present"),
    (("CSV",), "text/csv; charset=UTF-8; header=absent"),
    (("JSONEachRow", "JSONLines", "NDJSON", "JSONCompactEachRow", "JSONStringsEachRow", "JSONObjectEachRow"),
     "application/x-ndjson; charset=UTF-8"),
    (("JSON",), "application/json; charset=UTF-8"),
    (("XML",), "application/xml; charset=UTF-8"),
    (("Native", "RowBinary", "Parquet", "Arrow", "ORC", "Avro", "Protobuf", "MsgPack", "CapnProto", "BSON", "Npy"),
     "application/octet-stream"),
]


def content_type(fmt: str) -> str:
    for prefixes, ctype in _CONTENT_TYPES:
        if fmt.startswith(prefixes):
            return ctype
    return "text/plain; charset=UTF-8"


def decode_content(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    if encoding == "lz4":
        return lz4.frame.decompress(body)
    if encoding == "xz":
        return lzma.decompress(body)
    if encoding == "bz2":
        return bz2.decompress(body)
    raise ValueError(f"Unknown HTTP compression method: {encoding} (this server reads gzip, deflate, zstd, lz4, xz, bz2)")


def encode_content(body: bytes, accept: str, level: int) -> tuple[bytes, str]:
    accepted = {a.split(";")[0].strip().lower() for a in accept.split(",")}
    if "gzip" in accepted:
        return gzip.compress(body, compresslevel=level), "gzip"
    if "deflate" in accepted:
        return zlib.compress(body, level), "deflate"
    if "zstd" in accepted:
        return zstandard.ZstdCompressor(level=level).compress(body), "zstd"
    if "lz4" in accepted:
        return lz4.frame.compress(body), "lz4"
    return body, ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "crowsnest-chdb-server"
    sys_version = ""
    # Idle keep-alive connections are closed after this many seconds, as by
    # ClickHouse's keep_alive_timeout.
    timeout = 30
    # Headers and body go out in separate writes; without TCP_NODELAY each
    # response waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    engine: Engine  # set on the subclass built by serve()

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, fmt, *args):  # BaseHTTPRequestHandler's access log
        log.debug("%s - %s", self.client_address[0], fmt % args)

    def do_GET(self):
        self._handle(readonly_reason="For queries over HTTP, method GET implies readonly. "
                                     "You should use method POST for modifying queries")

    def do_POST(self):
        self._handle()

    def do_HEAD(self):
        path = urlsplit(self.path).path
        self._send(200 if path in ("/", "/ping", "/replicas_status") else 404, b"", {"Content-Type": "text/html; charset=UTF-8"}, head=True)

    def _handle(self, readonly_reason: str = ""):
        started = time.monotonic_ns()
        url = urlsplit(self.path)
        try:
            raw_body = self._read_body()
        except (ValueError, OSError) as e:
            self.close_connection = True
            self._send_error(self.engine.code("CANNOT_READ_ALL_DATA"), f"Cannot read request body: {e}", {})
            return
        if url.path in ("/ping", "/replicas_status"):
            self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            return
        if url.path != "/":
            self._send(404, f"There is no handle {url.path}\n\nUse / or /ping for health checks.\n".encode(),
                       {"Content-Type": "text/html; charset=UTF-8"})
            return
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())
        common = {
            "X-ClickHouse-Server-Display-Name": self.engine.display_name,
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.engine.timezone,
        }
        if "query" not in params and not raw_body and self.command == "GET":
            self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            return
        try:
            req = self._build_request(params, raw_body, readonly_reason)
            result = self.engine.execute(req)
        except QueryError as e:
            self._send_error(e.code, e.message, common)
            log.info("%s %s -> error %d: %s", self.command, _short(params.get("query") or raw_body), e.code, e.message[:300])
            return
        elapsed_ns = time.monotonic_ns() - started
        headers = dict(common)
        headers["X-ClickHouse-Format"] = result.format
        headers["Content-Type"] = content_type(result.format)
        headers["X-ClickHouse-Summary"] = json.dumps({
            "read_rows": str(result.read_rows), "read_bytes": str(result.read_bytes),
            "written_rows": str(result.written_rows), "written_bytes": str(result.written_bytes),
            "total_rows_to_read": "0", "result_rows": str(result.result_rows),
            "result_bytes": str(len(result.body)), "elapsed_ns": str(elapsed_ns),
        }, separators=(",", ":"))
        body = result.body
        if params.get("compress") == "1":
            try:
                method = compressed_blocks.method_by_name(params.get("network_compression_method", "LZ4"))
            except compressed_blocks.CompressionError as e:
                self._send_error(self.engine.code(e.code_name), str(e), common)
                return
            body = compressed_blocks.compress(body, method, int(params.get("network_zstd_compression_level", "1")))
        elif params.get("enable_http_compression") in ("1", "true") and body:
            body, encoding = encode_content(body, self.headers.get("Accept-Encoding", ""),
                                            int(params.get("http_zlib_compression_level", "3")))
            if encoding:
                headers["Content-Encoding"] = encoding
        self._send(200, body, headers)
        log.info("%s %s -> %d bytes in %.1f ms", self.command, _short(params.get("query") or raw_body),
                 len(body), elapsed_ns / 1e6)

    def _build_request(self, params: dict[str, str], raw_body: bytes, readonly_reason: str) -> Request:
        e = self.engine
        if self.headers.get("Content-Type", "").startswith("multipart/form-data"):
            raise QueryError(e.code("NOT_IMPLEMENTED"),
                             "External tables (multipart/form-data) are not supported by the crowsnest chdb-server")
        try:
            body = decode_content(raw_body, self.headers.get("Content-Encoding", ""))
            if params.get("decompress") == "1" and body:
                body = compressed_blocks.decompress(body)
        except compressed_blocks.CompressionError as err:
            raise QueryError(e.code(err.code_name), str(err)) from None
        except ValueError as err:
            raise QueryError(e.code("UNKNOWN_COMPRESSION_METHOD"), str(err)) from None
        except Exception as err:  # corrupt gzip/zstd/lz4 streams raise their own types
            raise QueryError(e.code("CANNOT_DECOMPRESS"), f"Cannot decompress request body: {err}") from None
        text, insert = split_query(params.get("query"), body)
        if insert is None and not (text or "").strip():
            raise QueryError(e.code("SYNTAX_ERROR"), "Empty query")
        if params.get("readonly") in ("1", "2") and not readonly_reason:
            readonly_reason = "Setting readonly is set for this query"
        settings = {
            k: v for k, v in params.items()
            if k not in _CLIENT_PARAMS and not k.startswith("param_") and not k.startswith(_IGNORED_PARAM_PREFIXES)
        }
        try:
            revision = int(params.get("client_protocol_version", "0") or 0)
        except ValueError:
            raise QueryError(e.code("BAD_ARGUMENTS"), "client_protocol_version must be a number") from None
        return Request(
            text=text,
            insert=insert,
            database=params.get("database") or self.headers.get("X-ClickHouse-Database") or "default",
            default_format=params.get("default_format") or self.headers.get("X-ClickHouse-Format") or "TabSeparated",
            settings=settings,
            params={k[len("param_"):]: v for k, v in params.items() if k.startswith("param_")},
            readonly_reason=readonly_reason,
            client_revision=revision,
        )

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline(65537)
                if not size_line:
                    raise ValueError("connection closed inside a chunked body")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunk = self.rfile.read(size)
                if len(chunk) != size:
                    raise ValueError("connection closed inside a chunk")
                chunks.append(chunk)
                self.rfile.readline(3)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            raise ValueError("connection closed inside the body")
        return body

    def _send_error(self, code: int, message: str, headers: dict[str, str]) -> None:
        name = self.engine.error_names.get(code, "")
        text = message if message.startswith("Code: ") else f"Code: {code}. DB::Exception: {message}. ({name})"
        if "(version " not in text:
            text += f" (version {self.engine.version})"
        out = dict(headers)
        out["X-ClickHouse-Exception-Code"] = str(code)
        if name:
            out["X-ClickHouse-Exception-Name"] = name
        out["Content-Type"] = "text/plain; charset=UTF-8"
        self._send(_STATUS_BY_ERROR_NAME.get(name, 500), (text.rstrip("\n") + "\n").encode(), out)

    def _send(self, status: int, body: bytes, headers: dict[str, str], head: bool = False) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Keep-Alive", f"timeout={self.timeout}")
        self.end_headers()
        if body and not head:
            self.wfile.write(body)


def _short(q) -> str:
    if isinstance(q, bytes):
        q = q[:200].decode("utf-8", "replace")
    return " ".join((q or "").split())[:200]


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(host: str, port: int, engine: Engine) -> Server:
    handler = type("BoundHandler", (Handler,), {"engine": engine})
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server_cls = type("BoundServer", (Server,), {"address_family": family})
    return server_cls((host, port), handler)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default=os.environ.get("CROWSNEST_DEV_CH_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("CROWSNEST_DEV_CH_PORT", "8123")),
                    help="0 picks a free port; the log line 'listening on' names it")
    ap.add_argument("--data-dir", default=os.environ.get("CROWSNEST_DEV_CH_DATA_DIR", ".services/clickhouse/data"))
    ap.add_argument("--pid-file", default="")
    ap.add_argument("--log-level", default=os.environ.get("CROWSNEST_DEV_CH_LOG_LEVEL", "INFO"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    engine = Engine(args.data_dir)
    server = serve(args.host, args.port, engine)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    log.info("chdb-core %s, ClickHouse engine %s, data in %s", chdb.__version__, engine.version, os.path.abspath(args.data_dir))
    log.info("listening on http://%s:%d", host, port)
    try:
        stop.wait()
        log.info("stopping")
        server.shutdown()
        server.server_close()
        engine.close()
    finally:
        if args.pid_file:
            try:
                os.unlink(args.pid_file)
            except FileNotFoundError:
                pass
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
