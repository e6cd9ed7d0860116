"""Decoding loops of a captioner, as TensorFlow graphs: greedy search and beam search over a
decoder's ``step`` (one token a step, its cache carried through a ``tf.while_loop`` of fixed
length), and greedy search that recomputes the whole prefix each step (the no-cache baseline).

The same functions run under Keras ``generate()`` and inside the exported SavedModel's
signatures, so the two give the same captions. Every loop stops early once each sequence has
ended; finished sequences are padded with 0.

Example:
>>> ids, scores = greedy_search(decoder.step, decoder.init_cache(memory), batch, 25)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Callable, Dict, Tuple

import tensorflow as tf

from mmzoo.data.text import END_ID, START_ID

PAD_ID = 0
_NEG = -1e9

StepFn = Callable[[tf.Tensor, tf.Tensor, Dict[str, tf.Tensor]], Tuple[tf.Tensor, Dict[str, tf.Tensor]]]


def _write(buffer, index, values):
    """``buffer[:, index] = values`` by one-hot masking ([batch, length] int32; no scatter)."""
    mask = tf.one_hot(index, tf.shape(buffer)[-1], dtype=buffer.dtype)
    return buffer * (1 - mask) + tf.expand_dims(values, -1) * mask


def greedy_search(step: StepFn, cache: Dict[str, tf.Tensor], batch, max_length: int):
    """The most likely token each step. Returns ``(ids int32 [batch, max_length], score
    float32 [batch])``: the generated tokens (the end token included, then padding) and their
    summed log probability."""
    ids = tf.zeros([batch, max_length], tf.int32)
    token = tf.fill([batch], tf.constant(START_ID, tf.int32))
    done = tf.zeros([batch], tf.bool)
    score = tf.zeros([batch], tf.float32)

    def body(i, token, cache, ids, done, score):
        logits, cache = step(token, i, cache)
        log_p = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        best = tf.argmax(log_p, axis=-1, output_type=tf.int32)
        score = score + tf.where(done, 0.0, tf.reduce_max(log_p, axis=-1))
        best = tf.where(done, PAD_ID, best)
        ids = _write(ids, i, best)
        return i + 1, best, cache, ids, tf.logical_or(done, tf.equal(best, END_ID)), score

    def cond(i, token, cache, ids, done, score):
        return tf.logical_and(i < max_length, tf.logical_not(tf.reduce_all(done)))

    _, _, _, ids, _, score = tf.while_loop(cond, body, (tf.constant(0), token, cache, ids, done, score),
                                           maximum_iterations=max_length)
    return ids, score


def tile_beams(tensor, beam_width: int):
    """[batch, ...] -> [batch * beam_width, ...]: each example's rows side by side."""
    return tf.repeat(tensor, beam_width, axis=0)


def beam_search(step: StepFn, cache: Dict[str, tf.Tensor], batch, max_length: int, beam_width: int = 4,
                length_penalty: float = 0.6):
    """Beam search: ``beam_width`` hypotheses per example, each step keeping the most likely
    ``beam_width`` continuations; a finished hypothesis stays (padding at no cost). The best is
    chosen by log probability over ``((5 + length) / 6) ** length_penalty`` (GNMT's penalty;
    0 compares raw log probabilities). ``cache`` is for ``batch * beam_width`` rows (`tile_beams`).

    Returns ``(ids int32 [batch, max_length], score float32 [batch])`` (score: the chosen
    hypothesis' summed log probability)."""
    k = int(beam_width)
    token = tf.fill([batch * k], tf.constant(START_ID, tf.int32))
    ids = tf.zeros([batch, k, max_length], tf.int32)
    first = tf.concat([tf.zeros([1]), tf.fill([k - 1], _NEG)], axis=0)  # one live beam at the start
    log_p = tf.tile(first[None], [batch, 1])
    done = tf.zeros([batch, k], tf.bool)
    length = tf.zeros([batch, k], tf.float32)
    rows = tf.range(batch)[:, None] * k

    def body(i, token, cache, ids, log_p, done, length):
        logits, cache = step(token, i, cache)
        step_log_p = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        vocab = tf.shape(step_log_p)[-1]
        step_log_p = tf.reshape(step_log_p, [batch, k, vocab])
        pad_only = tf.where(tf.equal(tf.range(vocab), PAD_ID), 0.0, _NEG)  # a finished beam only pads
        step_log_p = tf.where(done[..., None], pad_only[None, None], step_log_p)
        total = tf.reshape(log_p[..., None] + step_log_p, [batch, k * vocab])
        log_p, picked = tf.math.top_k(total, k)
        beam = picked // vocab
        chosen = picked % vocab
        ids = tf.gather(ids, beam, batch_dims=1)
        was_done = tf.gather(done, beam, batch_dims=1)
        length = tf.gather(length, beam, batch_dims=1) + tf.where(was_done, 0.0, 1.0)
        done = tf.logical_or(was_done, tf.equal(chosen, END_ID))
        ids = tf.reshape(_write(tf.reshape(ids, [batch * k, max_length]), i, tf.reshape(chosen, [-1])),
                         [batch, k, max_length])
        order = tf.reshape(rows + beam, [-1])
        cache = tf.nest.map_structure(lambda t: tf.gather(t, order), cache)
        return i + 1, tf.reshape(chosen, [-1]), cache, ids, log_p, done, length

    def cond(i, token, cache, ids, log_p, done, length):
        return tf.logical_and(i < max_length, tf.logical_not(tf.reduce_all(done)))

    _, _, _, ids, log_p, done, length = tf.while_loop(
        cond, body, (tf.constant(0), token, cache, ids, log_p, done, length), maximum_iterations=max_length)
    normalised = log_p / tf.pow((5.0 + length) / 6.0, float(length_penalty))
    best = tf.argmax(normalised, axis=-1, output_type=tf.int32)
    return tf.gather(ids, best, batch_dims=1), tf.gather(log_p, best, batch_dims=1)


def greedy_search_uncached(decode_prefix: Callable, batch, max_length: int):
    """Greedy search that runs the decoder over the whole prefix every step (what decoding
    costs without a cache: the benchmark's baseline). ``decode_prefix(tokens [batch, i + 1])``
    returns logits [batch, i + 1, vocab]. Unrolled: one decoder call per position."""
    tokens = tf.fill([batch, 1], tf.constant(START_ID, tf.int32))
    done = tf.zeros([batch], tf.bool)
    score = tf.zeros([batch], tf.float32)
    out = []
    for _ in range(max_length):
        log_p = tf.nn.log_softmax(tf.cast(decode_prefix(tokens)[:, -1], tf.float32))
        best = tf.argmax(log_p, axis=-1, output_type=tf.int32)
        score = score + tf.where(done, 0.0, tf.reduce_max(log_p, axis=-1))
        best = tf.where(done, PAD_ID, best)
        out.append(best)
        done = tf.logical_or(done, tf.equal(best, END_ID))
        tokens = tf.concat([tokens, best[:, None]], axis=1)
    return tf.stack(out, axis=1), score
