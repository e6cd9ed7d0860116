"""The reference loop an app runs over a captioner's LiteRT flatbuffer (numpy only; copied
beside the flatbuffers as ``caption_loop.py``): ``encode`` once, then ``decode_step`` a token at a
time, feeding each step's cache back, until the end token or the maximum length.

The flatbuffer has two signatures (batch 1):

- ``encode``: the model inputs (``image`` uint8 [1, H, W, C] pixels, ``audio`` float32 [1, S] PCM
  in [-1, 1]) -> ``cache_<name>`` tensors (the decoder's state before the first token);
- ``decode_step``: ``token`` int32 [1] (start id 2 first), ``index`` int32 [1] (the position,
  from 0) and every ``cache_<name>`` -> ``logits`` float32 [1, vocabulary] and the new caches.

Example:
>>> from ai_edge_litert.interpreter import Interpreter                    # doctest: +SKIP
>>> interpreter = Interpreter(model_path="litert/captioner_float32.tflite")
>>> ids, score = greedy_caption(interpreter.get_signature_runner("encode"),
...                             interpreter.get_signature_runner("decode_step"), {"image": pixels}, 38)
>>> " ".join(vocabulary[i] for i in ids if i > 3)
"""

from __future__ import annotations

from typing import Callable, Dict, List, Tuple

import numpy as np

START_ID, END_ID = 2, 3


def greedy_caption(encode: Callable[..., Dict[str, np.ndarray]], decode_step: Callable[..., Dict[str, np.ndarray]],
                   inputs: Dict[str, np.ndarray], max_length: int, start_id: int = START_ID,
                   end_id: int = END_ID) -> Tuple[List[int], float]:
    """Greedy decoding of one example: ``(token ids up to and including the end id, summed log
    probability)``. ``encode`` / ``decode_step`` are LiteRT signature runners (or any callables
    taking and returning the same named arrays)."""
    cache = {k: v for k, v in encode(**inputs).items()}
    token = np.array([start_id], np.int32)
    ids: List[int] = []
    score = 0.0
    for index in range(max_length):
        out = decode_step(token=token, index=np.array([index], np.int32), **cache)
        logits = np.asarray(out.pop("logits"), np.float64)[0]
        log_p = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
        best = int(np.argmax(log_p))
        score += float(log_p[best])
        ids.append(best)
        if best == end_id:
            break
        token = np.array([best], np.int32)
        cache = out
    return ids, score
