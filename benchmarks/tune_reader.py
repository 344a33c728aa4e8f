"""Measure reader prompt/decoding variants on SQuAD v1.1 dev with the gold paragraph given.

Prints EM, F1 (official SQuAD normalisation, max over gold answers), "contains" (the gold
answer appears in the reply) and the abstention rate for each variant, on a fixed random
sample of questions. The retriever is out of the loop: this isolates the reader.

    python benchmarks/tune_reader.py --n 100 --seed 0
    python benchmarks/tune_reader.py --variants plain,oneshot

Measured (n=40, seed 0, --threads 1 --batch 8, SmolLM2-135M-Instruct Q4_1, CPU; greedy):

    variant          EM    F1  contains
    sys             0.0   9.6      25.0   system prompt only: copies its "1889 [1]" example
    oneshot_qfirst  2.5  14.7      45.0   + worked example, question before and after
    oneshot         5.0  19.0      52.5   + worked example, question after only  <- default

The plain prompt (plain, 96 tokens, penalty 1.1) scored F1 16-17 on 100 random questions
(evaldata README); it was not re-run on this sample for lack of CPU time.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass

import common  # noqa: F401  (the repository on sys.path, HF_HUB_OFFLINE, before any model loads)
import torch
from squad_sample import load_items

from rag.answer.citations import first_line, says_unknown, strip_markers
from rag.answer.prompt import PLAIN_SYSTEM_PROMPT, PromptStyle, build_prompt
from rag.evaluation.metrics import token_f1
from rag.models.generate import HFGenerator, build_generator
from rag.settings import Settings
from rag.text import normalize_answer as normalize
from rag.types import DecodingParams, Source


@dataclass(frozen=True)
class Variant:
    style: PromptStyle
    params: DecodingParams
    stop_at_newline: bool = True




def snap_to_passage(reply: str, passage: str) -> str:
    """Replace the reply by the passage span (<= reply length + 3 words) it overlaps most."""
    if not reply or normalize(reply) in normalize(passage):
        return reply
    words = passage.split()
    target = len(reply.split())
    best, best_f1 = reply, 0.0
    for i in range(len(words)):
        for j in range(i + 1, min(len(words), i + target + 3) + 1):
            f1 = token_f1(" ".join(words[i:j]), reply)
            if f1 > best_f1:
                best, best_f1 = " ".join(words[i:j]).strip(".,;:"), f1
    return best if best_f1 >= 0.5 else reply


def load_sample(n: int, seed: int) -> list[tuple[str, str, str, list[str]]]:
    items = [(it.title, it.context, it.question, it.answers) for it in load_items()]
    return random.Random(seed).sample(items, n)


def variants(max_new: int) -> dict[str, Variant]:
    plain = PromptStyle(system=PLAIN_SYSTEM_PROMPT, plain=True, examples=0, question_first=False)
    short = DecodingParams(max_new_tokens=max_new, repetition_penalty=1.0)
    return {
        # The baseline: a plain prompt and the old defaults (96 tokens, penalty 1.1).
        "plain": Variant(plain, DecodingParams(max_new_tokens=96, repetition_penalty=1.1), False),
        "plain_short": Variant(plain, short),
        "sys": Variant(PromptStyle(examples=0, question_first=False), short),
        "sys_qfirst": Variant(PromptStyle(examples=0, question_first=True), short),
        "oneshot": Variant(PromptStyle(examples=1, question_first=False), short),
        "oneshot_qfirst": Variant(PromptStyle(examples=1, question_first=True), short),
        "fewshot3": Variant(PromptStyle(examples=3, question_first=False), short),
        "oneshot_12": Variant(PromptStyle(examples=1), DecodingParams(max_new_tokens=12)),
        "oneshot_rep11": Variant(PromptStyle(examples=1), DecodingParams(max_new_tokens=max_new)),
    }


def generate_batch(gen: HFGenerator, batch: list[list[dict[str, str]]], params: DecodingParams,
                   stop_at_newline: bool) -> list[str]:
    """Greedy replies for several prompts at once (left-padded).

    Same outputs as ``gen.stream`` one prompt at a time, up to float noise, but several
    times faster on a CPU: a 135M model is memory-bound, so 16 rows cost little more than 1.
    """
    ids = [gen.prompt_ids(m) for m in batch]
    width = max(len(x) for x in ids)
    pad = gen.tokenizer.pad_token_id or gen.tokenizer.eos_token_id
    input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=gen.device)
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=gen.device)
    with torch.inference_mode():
        out = gen.model.generate(
            input_ids=input_ids, attention_mask=mask, max_new_tokens=params.max_new_tokens,
            do_sample=False, temperature=None, top_k=None, top_p=None,
            repetition_penalty=params.repetition_penalty, pad_token_id=pad,
            # The chain stops at the first line break; stopping here too saves the time.
            **({"stop_strings": ["\n"], "tokenizer": gen.tokenizer} if stop_at_newline else {}),
        )
    return list(gen.tokenizer.batch_decode(out[:, width:], skip_special_tokens=True))


def run_variant(gen: HFGenerator, v: Variant, sample: list[tuple[str, str, str, list[str]]],
                batch_size: int, show: int) -> dict[str, float]:
    prompts = []
    for title, context, question, _ in sample:
        src = [Source(n=1, source=title, page=None, score=1.0, text=context)]
        prompts.append(build_prompt(question, src, count_tokens=gen.count_tokens, budget=2048,
                                    style=v.style).messages)
    t0 = time.perf_counter()
    # Batches of similar length waste less on padding.
    order = sorted(range(len(prompts)), key=lambda i: len(gen.prompt_ids(prompts[i])))
    replies = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        out = generate_batch(gen, [prompts[i] for i in idx], v.params, v.stop_at_newline)
        for i, r in zip(idx, out, strict=True):
            replies[i] = r
    em = f1 = contains = abstained = snap_f1 = 0.0
    for k, ((_, context, question, golds), raw) in enumerate(zip(sample, replies, strict=True)):
        reply = first_line(raw) if v.stop_at_newline else raw.strip()
        if says_unknown(reply):
            abstained += 1
            answer = ""
        else:
            answer = strip_markers(reply)
        if k < show:
            print(f"  Q: {question} | gold: {golds[0]!r} | reply: {reply[:100]!r} -> {answer[:60]!r}")
        em += max(float(normalize(answer) == normalize(g)) for g in golds)
        f1 += max(token_f1(answer, g) for g in golds)
        snapped = snap_to_passage(answer, context)
        snap_f1 += max(token_f1(snapped, g) for g in golds)
        contains += float(any(normalize(g) in normalize(answer) for g in golds) and bool(answer))
    n = len(sample)
    return {
        "EM": 100 * em / n, "F1": 100 * f1 / n, "contains": 100 * contains / n,
        "abstain": 100 * abstained / n, "F1_snap": 100 * snap_f1 / n,
        "s_per_q": (time.perf_counter() - t0) / n,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="questions in the sample")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16, help="prompts generated together")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads (0 = torch's default); 1 is far faster on a busy machine")
    ap.add_argument("--show", type=int, default=0, help="print the first N replies of each variant")
    ap.add_argument("--variants", default="all", help="comma-separated names, or 'all'")
    args = ap.parse_args()
    all_v = variants(args.max_new_tokens)
    names = list(all_v) if args.variants == "all" else args.variants.split(",")
    unknown = [n for n in names if n not in all_v]
    if unknown:
        print(f"unknown variant(s) {unknown}; choose from {list(all_v)}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = build_generator(Settings())
    sample = load_sample(args.n, args.seed)
    print(f"n={args.n} seed={args.seed} decoder={gen.name} device={gen.device}")
    print(f"{'variant':<14}{'EM':>7}{'F1':>7}{'contains':>10}{'abstain':>9}{'F1 snap':>9}{'s/q':>7}")
    for name in names:
        r = run_variant(gen, all_v[name], sample, args.batch, args.show)
        print(f"{name:<14}{r['EM']:7.1f}{r['F1']:7.1f}{r['contains']:10.1f}{r['abstain']:9.1f}"
              f"{r['F1_snap']:9.1f}{r['s_per_q']:7.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
