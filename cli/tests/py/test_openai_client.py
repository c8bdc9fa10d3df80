"""The official `openai` Python client against a running `vecindex serve`.

cli/tests/openai_client.rs starts the server and runs this file in the venv of
scripts/openai-venv, with VECINDEX_URL (http://127.0.0.1:PORT), VECINDEX_TOKEN (the server's
--token, sent by the client as its API key) and VECINDEX_MODEL (the embedder's name) set.

The reference is the server's own float answer fetched with plain urllib: what the client gives
for float, base64 (decoded here) and its default (it asks for base64 and decodes it itself) must
be the same vectors, as float32.
"""

import base64
import json
import os
import struct
import urllib.request

import openai
import pytest

URL = os.environ.get("VECINDEX_URL")
if URL is None:
    pytest.skip("run by `cargo test -p vecindex-cli --test openai_client`, which starts the server", allow_module_level=True)
TOKEN = os.environ["VECINDEX_TOKEN"]
MODEL = os.environ["VECINDEX_MODEL"]

TEXTS = ["unpack the archive into a directory", "persist the index", "how do I search by text?"]


@pytest.fixture(scope="module")
def client():
    # No retries: a refusal must show as the error it is.
    return openai.OpenAI(base_url=f"{URL}/v1", api_key=TOKEN, max_retries=0)


def direct(inputs):
    """POST /v1/embeddings with urllib, encoding_format float: the reference answer."""
    body = json.dumps({"input": inputs, "model": MODEL, "encoding_format": "float"}).encode()
    request = urllib.request.Request(
        f"{URL}/v1/embeddings",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def f32(vector):
    """The float32 values of `vector` (JSON floats are the shortest text of each float32)."""
    return list(struct.unpack(f"<{len(vector)}f", struct.pack(f"<{len(vector)}f", *vector)))


def from_base64(text):
    raw = base64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


@pytest.mark.parametrize("inputs", [TEXTS[0], TEXTS], ids=["string", "list"])
def test_float_base64_and_default_agree_with_the_server(client, inputs):
    reference = direct(inputs)
    expected = [f32(d["embedding"]) for d in reference["data"]]
    assert len(expected) == (1 if isinstance(inputs, str) else len(inputs))

    floats = client.embeddings.create(input=inputs, model=MODEL, encoding_format="float")
    encoded = client.embeddings.create(input=inputs, model=MODEL, encoding_format="base64")
    default = client.embeddings.create(input=inputs, model=MODEL)

    for answer in (floats, encoded, default):
        assert answer.object == "list"
        assert answer.model == MODEL
        assert [d.index for d in answer.data] == list(range(len(expected)))
        assert answer.usage.prompt_tokens == reference["usage"]["prompt_tokens"] > 0
        assert answer.usage.total_tokens == answer.usage.prompt_tokens
    assert [f32(d.embedding) for d in floats.data] == expected
    assert [d.embedding for d in floats.data] == [d["embedding"] for d in reference["data"]]
    # Asked for explicitly, base64 comes back as the string the server sent.
    assert all(isinstance(d.embedding, str) for d in encoded.data)
    assert [from_base64(d.embedding) for d in encoded.data] == expected
    # Not asked for, the client requests base64 and decodes it to floats itself.
    assert [d.embedding for d in default.data] == expected
    assert all(len(v) == len(expected[0]) for v in expected)


def test_dimensions_of_the_model_are_accepted_and_others_refused(client):
    dim = len(direct(TEXTS[1])["data"][0]["embedding"])
    same = client.embeddings.create(input=TEXTS[1], model=MODEL, dimensions=dim, encoding_format="float")
    assert len(same.data[0].embedding) == dim
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(input=TEXTS[1], model=MODEL, dimensions=dim // 2)
    assert refused.value.status_code == 400
    assert refused.value.param == "dimensions"
    assert f"{dim} dimensions" in refused.value.message


def test_token_arrays_are_refused(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(input=[[1, 2, 3]], model=MODEL)
    assert "token arrays are not supported; send strings" in refused.value.message


def test_a_wrong_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as refused:
        client.embeddings.create(input="text", model="text-embedding-3-small")
    assert refused.value.code == "model_not_found"


def test_a_wrong_api_key_is_refused():
    wrong = openai.OpenAI(base_url=f"{URL}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        wrong.embeddings.create(input="text", model=MODEL)
    assert refused.value.code == "invalid_api_key"


def test_models_lists_the_embedder(client):
    assert [m.id for m in client.models.list()] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL
