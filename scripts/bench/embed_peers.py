#!/usr/bin/env python3
"""ONNX Runtime from Python as a Python user runs it, the peer of vecindex's MiniLM embedder:
the `tokenizers` package (tokenizer.json, truncation to 256 tokens, each batch padded to its
longest text, as sentence-transformers does) and an onnxruntime CPU session on one of the graphs
of scripts/make-minilm-onnx. Run it in target/onnx-venv (made by scripts/make-minilm-onnx):

  target/onnx-venv/bin/python scripts/bench/embed_peers.py --model-dir target/models/all-MiniLM-L6-v2 \\
      --texts TEXTS.json [--graph model.onnx] [--threads 1,2] [--batches 1,16,32] [--seconds 3]

TEXTS.json is a JSON list of strings. Each cell (threads, batch) embeds the whole list, in the
given order, in consecutive batches, tokenization included, once as warm-up and then as many
whole passes as fit in --seconds (at least one). Prints one JSON object per cell and line; a
"chunk" is one text.
"""
import argparse
import json
import os
import time


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--texts", required=True, help="JSON list of strings")
    p.add_argument("--graph", default="model.onnx", choices=["model.onnx", "model-fused.onnx", "model-int8.onnx"])
    p.add_argument("--threads", default="1,2", help="comma-separated intra-op thread counts")
    p.add_argument("--batches", default="1,16,32", help="comma-separated batch sizes")
    p.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds per cell")
    a = p.parse_args()
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    texts = json.load(open(a.texts))
    tok = Tokenizer.from_file(os.path.join(a.model_dir, "tokenizer.json"))
    # tokenizer.json pads every text to 128 and truncates at 128; sentence-transformers uses
    # max_seq_length 256 and pads each batch only to its longest text.
    tok.enable_truncation(max_length=256)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")

    for threads in map(int, a.threads.split(",")):
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        sess = ort.InferenceSession(os.path.join(a.model_dir, a.graph), so, providers=["CPUExecutionProvider"])

        def one_pass(batch):
            for i in range(0, len(texts), batch):
                enc = tok.encode_batch(texts[i:i + batch])
                ids = np.array([e.ids for e in enc], dtype=np.int64)
                mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
                sess.run(None, {"input_ids": ids, "attention_mask": mask})

        for batch in map(int, a.batches.split(",")):
            # A whole pass as warm-up: ONNX Runtime's arena grows for each new largest shape.
            one_pass(batch)
            passes, start = 0, time.perf_counter()
            while passes == 0 or time.perf_counter() - start < a.seconds:
                one_pass(batch)
                passes += 1
            secs = time.perf_counter() - start
            n = passes * len(texts)
            print(json.dumps({"peer": "onnxruntime-python", "graph": a.graph, "threads": threads, "batch": batch,
                              "texts": n, "seconds": round(secs, 3), "chunks_per_s": round(n / secs, 2),
                              "ms_per_chunk": round(1000 * secs / n, 3)}), flush=True)


if __name__ == "__main__":
    main()
