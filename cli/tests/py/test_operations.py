"""The server's OpenAPI document and metrics, checked by third-party validators.

Run by cli/tests/openai_client.rs against a real `vecindex serve` (VECINDEX_URL, with the keys
VECINDEX_TOKEN for writes and VECINDEX_READ_KEY for reads):

- openapi-spec-validator checks the document is valid OpenAPI 3.1;
- every request below is checked against its documented request schema, and every answer
  against the schema documented for its status (openapi-schema-validator), so the document
  describes what the server really does;
- prometheus_client's OpenMetrics parser reads /metrics (it refuses malformed exposition).
"""

import json
import os
import urllib.error
import urllib.request

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_spec
from prometheus_client.openmetrics.parser import text_string_to_metric_families

URL = os.environ["VECINDEX_URL"]
WRITE = os.environ["VECINDEX_TOKEN"]
READ = os.environ["VECINDEX_READ_KEY"]


def call(method, path, body=None, key=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(URL + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture(scope="module")
def spec():
    status, _, body = call("GET", "/openapi.json")
    assert status == 200
    document = json.loads(body)
    validate_spec(document)
    return document


def schema_validator(spec, schema):
    # The components ride along, so that the schema's `#/components/...` references resolve.
    return OAS31Validator({**schema, "components": spec["components"]})


def check(spec, method, template, path=None, body=None, key=None, expect=None, conforms=True):
    """Sends the request and validates its answer against the document (and the request too:
    that it conforms, or with `conforms=False` that the document rules it out); returns the
    status and the answer."""
    operation = spec["paths"][template][method.lower()]
    if body is not None:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema_validator(spec, schema).is_valid(body) == conforms, body
    status, headers, raw = call(method, path or template, body, key)
    if expect is not None:
        assert status == expect, raw
    documented = operation["responses"].get(str(status))
    assert documented is not None, f"{method} {template} answered {status}, which is not documented"
    content = documented.get("content", {})
    if "application/json" in content:
        answer = json.loads(raw)
        schema_validator(spec, content["application/json"]["schema"]).validate(answer)
        return status, answer
    return status, raw.decode()


def test_the_document_is_valid_openapi(spec):
    assert spec["openapi"].startswith("3.1")


def test_answers_match_the_documented_schemas(spec):
    doc = {"doc_id": "guide/intro", "text": "# Install\nunpack it\n# Use\nrun it", "metadata": {"year": 2024}}
    check(spec, "POST", "/documents", body=doc, key=READ, expect=401)
    _, added = check(spec, "POST", "/documents", body=doc, key=WRITE, expect=200)
    chunks = added["chunks"]
    assert chunks >= 1
    check(spec, "POST", "/documents", body={"doc_id": "x"}, key=WRITE, expect=400)
    _, document = check(spec, "GET", "/documents/{doc_id}", "/documents/guide/intro", key=READ, expect=200)
    assert len(document["chunks"]) == chunks
    check(spec, "GET", "/documents/{doc_id}", "/documents/nope", key=READ, expect=404)

    _, one = check(spec, "POST", "/search", body={"text": "unpack", "k": 1, "include": ["vector"]}, key=READ, expect=200)
    dim = len(one["hits"][0]["vector"])
    vector_doc = {"doc_id": "v", "chunks": [{"text": "t", "vector": [0.5] * dim, "metadata": {"tags": ["a"]}}]}
    check(spec, "POST", "/documents", body=vector_doc, key=WRITE, expect=200)
    _, batch = check(spec, "POST", "/search", body={"texts": ["unpack", "run"], "k": 2, "filter": {"year": {"$gte": 2000}}}, key=READ, expect=200)
    assert len(batch["results"]) == 2
    check(spec, "POST", "/search", body={"text": "unpack", "filter": {"year": {"$near": 1}}}, key=READ, expect=400)
    check(spec, "POST", "/search", body={"vector": [1.0, 2.0]}, key=READ, expect=422)
    check(spec, "POST", "/search", body={"text": "unpack"}, expect=401)
    _, persisted = check(spec, "POST", "/persist", key=WRITE, expect=200)
    assert persisted["rows"] == chunks + 1
    _, stats = check(spec, "GET", "/stats", key=READ, expect=200)
    assert stats["documents"] == 2 and stats["dim"] == dim
    check(spec, "DELETE", "/documents/{doc_id}", "/documents/v", key=WRITE, expect=200)
    check(spec, "DELETE", "/documents/{doc_id}", "/documents/v", key=WRITE, expect=404)

    _, models = check(spec, "GET", "/v1/models", key=READ, expect=200)
    model = models["data"][0]["id"]
    check(spec, "GET", "/v1/models/{model}", f"/v1/models/{model}", key=READ, expect=200)
    check(spec, "GET", "/v1/models/{model}", "/v1/models/gpt-4", key=READ, expect=404)
    for encoding in ["float", "base64"]:
        request = {"input": ["a", "b"], "model": model, "encoding_format": encoding}
        check(spec, "POST", "/v1/embeddings", body=request, key=READ, expect=200)
    tokens = {"input": [[1, 2]], "model": model}
    check(spec, "POST", "/v1/embeddings", body=tokens, key=READ, expect=400, conforms=False)
    check(spec, "POST", "/v1/embeddings", body={"input": "a", "model": model}, expect=401)

    _, ready = check(spec, "GET", "/readyz", expect=200)
    assert ready["ready"] is True
    check(spec, "GET", "/livez", expect=200)


def test_metrics_parse_as_openmetrics():
    status, headers, raw = call("GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    families = {family.name: family for family in text_string_to_metric_families(raw.decode())}
    assert families["vecindex_http_requests"].type == "counter"
    assert families["vecindex_http_request_duration_seconds"].type == "histogram"
    assert families["vecindex_http_request_duration_seconds"].unit == "seconds"
    for name in ["vecindex_chunks", "vecindex_segments", "vecindex_unindexed_rows", "vecindex_disk_bytes"]:
        assert families[name].type == "gauge", name
    labels = {tuple(sorted(s.labels)) for s in families["vecindex_http_requests"].samples}
    assert ("method", "route", "status") in labels, labels
