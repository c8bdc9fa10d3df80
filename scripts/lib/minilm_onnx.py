#!/usr/bin/env python3
"""Builds ONNX graphs of all-MiniLM-L6-v2 straight from model.safetensors with the `onnx` package
(no PyTorch, no safetensors package), then checks them with ONNX Runtime against the reference
embeddings. Run by scripts/make-minilm-onnx in target/onnx-venv.

  minilm_onnx.py MODEL_DIR REFERENCE.json

Writes into MODEL_DIR:
  model.onnx        standard opset-17 ops only, shaped like a PyTorch export; ONNX Runtime's
                    optimizer fuses it at load. vecindex's default: measured as fast as the
                    hand-fused graph, or faster (docs/benchmarks.md).
  model-fused.onnx  com.microsoft fused ops (EmbedLayerNormalization, Attention,
                    SkipLayerNormalization, BiasGelu), for comparison.
  model-int8.onnx   quantize_dynamic of model-fused.onnx (int8 MatMul weights, per channel).
All take input_ids and attention_mask, int64 [batch, seq], right padded, and give
sentence_embedding, float32 [batch, 384]: mean over real tokens, then L2 normalized, as
sentence-transformers does. token_type_ids are always 0, so token-type row 0 is a constant.
Skips the build when the stamp (sha256 of the weights, of config.json, of this file, and the
package versions) matches; always verifies.
"""
import hashlib
import json
import os
import struct
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

H, HEADS, FFN, LAYERS, EPS, MAX_POS = 384, 12, 1536, 6, 1e-12, 512
DH = H // HEADS
TOL = 1e-4  # max abs diff to the reference embeddings for the fp32 graphs
# int8 from the fused graph, per-channel weights, MatMuls only. Measured on the reference
# sentences (cosine to fp32 reference, mean/min): per-tensor 0.955/0.892; per-channel 0.994/0.980;
# per-channel with Attention as QAttention too 0.992/0.975 at no clear speed gain; the plain
# graph's MatMuls per-channel 0.992/0.975. Leaving some MatMuls fp32 (e.g. the FFN outputs) lifts
# the min to 0.988 but gives back most of the speed.
INT8_SOURCE, INT8_PER_CHANNEL = "model-fused.onnx", True
OUTPUTS = ["model.onnx", "model-fused.onnx", "model-int8.onnx"]
STAMP = ".minilm-onnx-stamp"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_safetensors(path):
    """The format: u64 little-endian header length, a JSON header of {name: {dtype, shape,
    data_offsets}} (offsets relative to the end of the header), then the raw little-endian data."""
    dtypes = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4"}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
    return out


def check_config(model_dir):
    c = json.load(open(os.path.join(model_dir, "config.json")))
    want = {"hidden_size": H, "num_attention_heads": HEADS, "intermediate_size": FFN,
            "num_hidden_layers": LAYERS, "layer_norm_eps": EPS, "hidden_act": "gelu",
            "max_position_embeddings": MAX_POS, "position_embedding_type": "absolute"}
    bad = {k: c.get(k) for k, v in want.items() if c.get(k) != v}
    if bad:
        sys.exit(f"minilm_onnx: config.json differs from the graph's constants: {bad}")


class Graph:
    """A tiny builder: op() appends a node and returns its output name(s); init() adds a weight."""

    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def init(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))  # tobytes() is C order
        return name

    def const(self, value, dtype=np.int64):
        self.n += 1
        return self.init(f"const_{self.n}", np.array(value, dtype=dtype))

    def op(self, op_type, inputs, outputs=1, domain="", **attrs):
        self.n += 1
        names = [f"{op_type}_{self.n}_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, name=f"{op_type}_{self.n}",
                                           domain=domain or None, **attrs))
        return names[0] if outputs == 1 else names

    def model(self, name, out, opsets):
        ins = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
               for n in ("input_ids", "attention_mask")]
        self.nodes[-1].output[0] = out  # the last node gives the graph output
        outs = [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", H])]
        g = helper.make_graph(self.nodes, name, ins, outs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
                              producer_name="vecindex scripts/lib/minilm_onnx.py")
        m.ir_version = 8  # the IR of the opset-17 era, so older runtimes load it too
        return m


def pool(g, hidden, mask_f):
    """sentence-transformers' mean pooling (count clamped at 1e-9) then F.normalize (norm
    clamped at 1e-12): [B,S,H] -> [B,H]."""
    m3 = g.op("Unsqueeze", [mask_f, g.const([2])])
    summed = g.op("ReduceSum", [g.op("Mul", [hidden, m3]), g.const([1])], keepdims=0)
    count = g.op("ReduceSum", [m3, g.const([1])], keepdims=0)
    mean = g.op("Div", [summed, g.op("Max", [count, g.const(1e-9, np.float32)])])
    norm = g.op("ReduceL2", [mean], axes=[1], keepdims=1)
    return g.op("Div", [mean, g.op("Max", [norm, g.const(1e-12, np.float32)])])


def linear_t(w, name):
    """torch Linear keeps [out, in]; MatMul wants [in, out]."""
    return np.ascontiguousarray(w[name + ".weight"].T)


def build_plain(w):
    g = Graph()
    # Embeddings: word + token type 0 + position, then LayerNorm (as BertEmbeddings).
    word = g.op("Gather", [g.init("word_embeddings", w["embeddings.word_embeddings.weight"]), "input_ids"])
    tt0 = g.init("token_type_0", w["embeddings.token_type_embeddings.weight"][0])
    seq = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const(1)])
    pos_ids = g.op("Range", [g.const(0), seq, g.const(1)])
    pos = g.op("Gather", [g.init("position_embeddings", w["embeddings.position_embeddings.weight"]), pos_ids])
    x = g.op("Add", [g.op("Add", [word, tt0]), pos])
    x = g.op("LayerNormalization", [x, g.init("emb_ln_g", w["embeddings.LayerNorm.weight"]),
                                    g.init("emb_ln_b", w["embeddings.LayerNorm.bias"])], axis=-1, epsilon=EPS)
    # Additive mask [B,1,1,S]: 0 for real tokens, float32 min for padding (as transformers).
    mask_f = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    inv = g.op("Sub", [g.const(1.0, np.float32), mask_f])
    bias = g.op("Unsqueeze", [g.op("Mul", [inv, g.const(np.finfo(np.float32).min, np.float32)]), g.const([1, 2])])
    heads, merge = g.const([0, 0, HEADS, DH]), g.const([0, 0, H])
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."

        def dense(v, name):
            return g.op("Add", [g.op("MatMul", [v, g.init(f"l{i}_{name}_w", linear_t(w, p + name))]),
                                g.init(f"l{i}_{name}_b", w[p + name + ".bias"])])

        def ln(v, name):
            return g.op("LayerNormalization", [v, g.init(f"l{i}_{name}_g", w[p + name + ".weight"]),
                                               g.init(f"l{i}_{name}_b", w[p + name + ".bias"])], axis=-1, epsilon=EPS)

        q = g.op("Transpose", [g.op("Reshape", [dense(x, "attention.self.query"), heads])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [dense(x, "attention.self.key"), heads])], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [dense(x, "attention.self.value"), heads])], perm=[0, 2, 1, 3])
        scores = g.op("Div", [g.op("MatMul", [q, k]), g.const(np.sqrt(DH), np.float32)])
        probs = g.op("Softmax", [g.op("Add", [scores, bias])], axis=-1)
        ctx = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3]), merge])
        x = ln(g.op("Add", [dense(ctx, "attention.output.dense"), x]), "attention.output.LayerNorm")
        h = dense(x, "intermediate.dense")
        # erf GELU as torch exports it: x * 0.5 * (1 + erf(x / sqrt(2)))
        erf = g.op("Erf", [g.op("Div", [h, g.const(np.sqrt(2.0), np.float32)])])
        h = g.op("Mul", [g.op("Mul", [h, g.const(0.5, np.float32)]), g.op("Add", [erf, g.const(1.0, np.float32)])])
        x = ln(g.op("Add", [dense(h, "output.dense"), x]), "output.LayerNorm")
    pool(g, x, mask_f)
    return g.model("all-MiniLM-L6-v2-plain", "sentence_embedding", [("", 17)])


def build_fused(w):
    g = Graph()
    ms = "com.microsoft"
    ids32 = g.op("Cast", ["input_ids"], to=TensorProto.INT32)
    mask32 = g.op("Cast", ["attention_mask"], to=TensorProto.INT32)
    # No segment_ids input: token type is always 0, so its row is folded into the position table.
    # Its mask input only feeds the mask_index output (unused: Attention takes the raw mask).
    pos_tt = w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
    x, _ = g.op("EmbedLayerNormalization",
                [ids32, "", g.init("word_embeddings", w["embeddings.word_embeddings.weight"]),
                 g.init("position_embeddings", pos_tt), "", g.init("emb_ln_g", w["embeddings.LayerNorm.weight"]),
                 g.init("emb_ln_b", w["embeddings.LayerNorm.bias"]), mask32],
                outputs=2, domain=ms, epsilon=EPS)
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        sa = p + "attention.self."
        qkv_w = np.concatenate([linear_t(w, sa + n) for n in ("query", "key", "value")], axis=1)  # [384, 1152]
        qkv_b = np.concatenate([w[sa + n + ".bias"] for n in ("query", "key", "value")])
        # mask_index given as the raw [B,S] int32 mask (1 keep, 0 padding).
        att = g.op("Attention", [x, g.init(f"l{i}_qkv_w", qkv_w), g.init(f"l{i}_qkv_b", qkv_b), mask32],
                   domain=ms, num_heads=HEADS)

        def skip_ln(v, skip, dense, ln):
            out = g.op("MatMul", [v, g.init(f"l{i}_{dense}_w", linear_t(w, p + dense))])
            return g.op("SkipLayerNormalization",
                        [out, skip, g.init(f"l{i}_{ln}_g", w[p + ln + ".weight"]),
                         g.init(f"l{i}_{ln}_b", w[p + ln + ".bias"]),
                         g.init(f"l{i}_{dense}_b", w[p + dense + ".bias"])],
                        domain=ms, epsilon=EPS)

        x = skip_ln(att, x, "attention.output.dense", "attention.output.LayerNorm")
        h = g.op("MatMul", [x, g.init(f"l{i}_ffn1_w", linear_t(w, p + "intermediate.dense"))])
        h = g.op("BiasGelu", [h, g.init(f"l{i}_ffn1_b", w[p + "intermediate.dense.bias"])], domain=ms)
        x = skip_ln(h, x, "output.dense", "output.LayerNorm")
    pool(g, x, g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT))
    return g.model("all-MiniLM-L6-v2", "sentence_embedding", [("", 17), (ms, 1)])


def make_int8(src, dst):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    # Attention and the word table (Gather) stay fp32; see INT8_SOURCE for why.
    quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=INT8_PER_CHANNEL,
                     op_types_to_quantize=["MatMul"],
                     # ONNX shape inference cannot type com.microsoft outputs; they are all float.
                     extra_options={"DefaultTensorType": TensorProto.FLOAT})


def session(path, threads=0):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def verify(path, ref):
    """Each reference sentence alone and all of them in one right-padded batch; returns the max
    abs diff to the reference and the cosines."""
    sess = session(path)
    ids, want = ref["token_ids"], np.array(ref["embeddings"], dtype=np.float32)
    alone = np.concatenate([sess.run(None, {"input_ids": np.array([t], np.int64),
                                            "attention_mask": np.ones((1, len(t)), np.int64)})[0] for t in ids])
    width = max(map(len, ids))
    batch_ids = np.array([t + [0] * (width - len(t)) for t in ids], np.int64)
    batch_mask = np.array([[1] * len(t) + [0] * (width - len(t)) for t in ids], np.int64)
    batch = sess.run(None, {"input_ids": batch_ids, "attention_mask": batch_mask})[0]
    got = np.concatenate([alone, batch])
    ref2 = np.concatenate([want, want])
    cos = (got * ref2).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref2, axis=1)
    return float(np.abs(alone - want).max()), float(np.abs(batch - want).max()), cos


def io_summary(path):
    m = onnx.load(path, load_external_data=False)

    def fmt(v):
        t = v.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in t.shape.dim]
        return f"{v.name} {TensorProto.DataType.Name(t.elem_type).lower()}{dims}"

    return ", ".join(fmt(v) for v in m.graph.input) + " -> " + ", ".join(fmt(v) for v in m.graph.output)


def main():
    model_dir, ref_path = sys.argv[1], sys.argv[2]
    paths = {n: os.path.join(model_dir, n) for n in OUTPUTS}
    weights = os.path.join(model_dir, "model.safetensors")
    stamp_path = os.path.join(model_dir, STAMP)
    stamp = json.dumps({"model.safetensors": sha256(weights),
                        "config.json": sha256(os.path.join(model_dir, "config.json")),
                        "minilm_onnx.py": sha256(os.path.abspath(__file__)),
                        "onnx": onnx.__version__, "onnxruntime": ort.__version__, "numpy": np.__version__},
                       sort_keys=True)
    current = os.path.exists(stamp_path) and open(stamp_path).read() == stamp
    if current and all(os.path.exists(p) for p in paths.values()):
        print(f"minilm_onnx: {model_dir}: graphs are up to date")
    else:
        check_config(model_dir)
        w = read_safetensors(weights)
        if os.path.exists(stamp_path):
            os.remove(stamp_path)
        for name, build in (("model.onnx", build_plain), ("model-fused.onnx", build_fused)):
            m = build(w)
            if name == "model.onnx":
                onnx.checker.check_model(m, full_check=True)  # standard ops only: fully checkable
            tmp = paths[name] + ".tmp"
            onnx.save(m, tmp)
            os.replace(tmp, paths[name])
            mib = os.path.getsize(paths[name]) >> 20
            print(f"minilm_onnx: wrote {paths[name]} ({mib} MiB, {len(m.graph.node)} nodes)")
        tmp = paths["model-int8.onnx"] + ".tmp"
        make_int8(paths[INT8_SOURCE], tmp)
        os.replace(tmp, paths["model-int8.onnx"])
        print(f"minilm_onnx: wrote {paths['model-int8.onnx']} ({os.path.getsize(paths['model-int8.onnx']) >> 20} MiB, "
              f"from {INT8_SOURCE}, per_channel={INT8_PER_CHANNEL})")
        with open(stamp_path, "w") as f:
            f.write(stamp)

    ref = json.load(open(ref_path))
    failed = False
    for name in OUTPUTS:
        alone, batch, cos = verify(paths[name], ref)
        if name == "model-int8.onnx":
            print(f"minilm_onnx: {name}: cosine to reference mean {cos.mean():.6f} min {cos.min():.6f}"
                  f" (max abs diff alone {alone:.2e}, batched {batch:.2e}; no threshold)")
        else:
            ok = max(alone, batch) <= TOL
            failed |= not ok
            print(f"minilm_onnx: {name}: max abs diff alone {alone:.2e}, batched {batch:.2e} "
                  f"({'ok' if ok else 'FAIL'}, limit {TOL:g})")
        print(f"minilm_onnx:   {io_summary(paths[name])}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
