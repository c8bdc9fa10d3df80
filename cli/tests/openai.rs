//! The OpenAI-compatible routes of the real `vecindex serve`: `POST /v1/embeddings` (string and
//! list inputs, float and base64 answers equal to each other and to the library's vectors, usage,
//! and every refusal in OpenAI's error shape) and `GET /v1/models`, with and without a token.

mod support;

use base64::Engine;
use serde_json::{Value, json};
use support::{Server, get, metric, post_json, request};
use vecindex::embed::{Embedder, HashingEmbedder};

const MODEL: &str = "hashing-384";
const TOKEN: &str = "sk-test";

fn floats(embedding: &Value) -> Vec<f32> {
    embedding
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {embedding}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn from_base64(embedding: &Value) -> Vec<f32> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(embedding.as_str().expect("a string")).unwrap();
    assert_eq!(bytes.len() % 4, 0);
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

/// Asserts an OpenAI error answer: status, `param`, `code`, and a piece of the message.
fn assert_error(reply: &support::Response, status: u16, param: Option<&str>, code: Option<&str>, says: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    let body = reply.json();
    let error = &body["error"];
    let kind = if status >= 500 { "server_error" } else { "invalid_request_error" };
    assert_eq!(error["type"], kind, "{body}");
    assert_eq!(error["param"].as_str(), param, "{body}");
    assert_eq!(error["code"].as_str(), code, "{body}");
    assert!(error["message"].as_str().unwrap().contains(says), "{says:?} not in {body}");
    assert_eq!(body.as_object().unwrap().len(), 1, "only `error`: {body}");
}

#[test]
fn embeddings_as_openai_answers_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("index"), &[]);
    let addr = server.addr.as_str();
    let library = HashingEmbedder::default();
    let embed = |body: Value| post_json(addr, "/v1/embeddings", None, &body);

    // One string.
    let text = "unpack the archive into a directory";
    let reply = embed(json!({ "input": text, "model": MODEL }));
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    assert_eq!((body["object"].as_str(), body["model"].as_str()), (Some("list"), Some(MODEL)), "{body}");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!((data[0]["object"].as_str(), data[0]["index"].as_u64()), (Some("embedding"), Some(0)));
    let single = floats(&data[0]["embedding"]);
    assert_eq!(single.len(), 384);
    assert_eq!(single, library.embed(&[text]).unwrap()[0], "the library's vector, to the bit");
    // Words stand for tokens with an embedder that has no tokenizer.
    assert_eq!(body["usage"], json!({ "prompt_tokens": 6, "total_tokens": 6 }));

    // A list, in order; base64 gives the same floats; `dimensions` equal to the model's is fine;
    // `user` is accepted; the alias names the same model.
    let texts = ["how do I install it", "persist the index", "a third text, about search"];
    let floats_reply =
        embed(json!({ "input": texts, "model": MODEL, "encoding_format": "float", "user": "u1" })).json();
    let base64_reply = embed(
        json!({ "input": texts, "model": "text-embedding-vecindex", "encoding_format": "base64", "dimensions": 384 }),
    )
    .json();
    assert_eq!(base64_reply["model"], MODEL, "the answer names the real model: {base64_reply}");
    let expected = library.embed(&texts).unwrap();
    for (i, vector) in expected.iter().enumerate() {
        assert_eq!(floats_reply["data"][i]["index"], i, "{floats_reply}");
        assert_eq!(&floats(&floats_reply["data"][i]["embedding"]), vector, "float {i}");
        assert_eq!(&from_base64(&base64_reply["data"][i]["embedding"]), vector, "base64 {i}");
    }
    assert_eq!(floats_reply["usage"]["prompt_tokens"], 5 + 3 + 5);
    assert_eq!(floats_reply["usage"], base64_reply["usage"]);

    // Refusals, in OpenAI's error shape.
    let dims = embed(json!({ "input": text, "model": MODEL, "dimensions": 256 }));
    assert_error(&dims, 400, Some("dimensions"), None, "384 dimensions");
    for tokens in [json!([1, 2, 3]), json!([[1, 2], [3]])] {
        let reply = embed(json!({ "input": tokens, "model": MODEL }));
        assert_error(&reply, 400, Some("input"), None, "token arrays are not supported; send strings");
    }
    assert_error(&embed(json!({ "input": "", "model": MODEL })), 400, Some("input"), None, "'$.input' is invalid");
    assert_error(&embed(json!({ "input": ["a", ""], "model": MODEL })), 400, Some("input"), None, "'$.input[1]'");
    assert_error(&embed(json!({ "input": [], "model": MODEL })), 400, Some("input"), None, "empty");
    assert_error(&embed(json!({ "input": ["a", {"b": 1}], "model": MODEL })), 400, Some("input"), None, "an object");
    assert_error(&embed(json!({ "model": MODEL })), 400, Some("input"), None, "'input'");
    let too_many: Vec<String> = (0..2049).map(|i| format!("t{i}")).collect();
    assert_error(&embed(json!({ "input": too_many, "model": MODEL })), 400, Some("input"), None, "at most 2048");
    let wrong = embed(json!({ "input": text, "model": "text-embedding-3-small" }));
    assert_error(&wrong, 404, Some("model"), Some("model_not_found"), "text-embedding-3-small");
    assert_error(&embed(json!({ "input": text })), 400, Some("model"), None, "model");
    let format = embed(json!({ "input": text, "model": MODEL, "encoding_format": "int8" }));
    assert_error(&format, 400, Some("encoding_format"), None, "\"int8\"");
    let unknown = embed(json!({ "input": text, "model": MODEL, "input_type": "query" }));
    assert_error(&unknown, 400, None, None, "Unrecognized request argument supplied: input_type");
    let malformed = request(addr, "POST", "/v1/embeddings", None, Some(b"{\"input\": ")).unwrap();
    assert_error(&malformed, 400, None, None, "could not parse the JSON body");

    // The models.
    let models = get(addr, "/v1/models").json();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], MODEL, "{models}");
    assert_eq!(models["data"][0]["object"], "model", "{models}");
    assert_eq!(get(addr, "/v1/models/hashing-384").json()["id"], MODEL);
    assert_error(&get(addr, "/v1/models/gpt-4"), 404, Some("model"), Some("model_not_found"), "gpt-4");

    // Metrics: the route is timed, and its texts went through the batcher.
    let metrics = get(addr, "/metrics").body;
    let embeddings =
        |status| metric(&metrics, "vecindex_http_requests_total", &[("route", "/v1/embeddings"), ("status", status)]);
    assert_eq!(metric(&metrics, "vecindex_http_requests_total", &[("route", "/v1/embeddings")]), 17.0);
    assert_eq!(embeddings("200"), 3.0, "{metrics}");
    assert_eq!(metric(&metrics, "vecindex_embed_batch_texts_sum", &[]), 7.0, "1 + 3 + 3 texts embedded:\n{metrics}");

    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn with_a_token_the_v1_routes_need_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("index"), &["--token", TOKEN]);
    let addr = server.addr.as_str();
    let body = json!({ "input": "persist the index", "model": MODEL });
    for token in [None, Some("sk-wrong")] {
        let refused = post_json(addr, "/v1/embeddings", token, &body);
        assert_error(&refused, 401, None, Some("invalid_api_key"), "bearer token");
        let models = request(addr, "GET", "/v1/models", token, None).unwrap();
        assert_error(&models, 401, None, Some("invalid_api_key"), "bearer token");
    }
    assert_eq!(post_json(addr, "/v1/embeddings", Some(TOKEN), &body).status, 200);
    assert_eq!(request(addr, "GET", "/v1/models", Some(TOKEN), None).unwrap().status, 200);
    // The server's own read routes stay open.
    assert_eq!(post_json(addr, "/search", None, &json!({ "text": "persist" })).status, 200);
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}
