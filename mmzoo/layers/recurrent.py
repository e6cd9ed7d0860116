"""A GRU that hoists its input projection out of the time loop on CPU."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops
from keras.src import backend as keras_backend


@keras.saving.register_keras_serializable(package="mmzoo")
class FastGRU(keras.layers.GRU):
    """`keras.layers.GRU` with the same weights, config and results, faster on CPU.

    A GRU spends most of its time in one small matmul per time step. Here the input
    projection ``x_t @ kernel + input_bias`` of every step is computed before the loop as
    one large matmul over ``[batch * steps, features]``; the loop keeps only the recurrent
    matmul and the gates. Where Keras would use cuDNN (a GPU is visible), where input or
    recurrent dropout is on, or with ``reset_after=False``, it falls back to
    `keras.layers.GRU` unchanged. ``unroll=True`` still gives a loop-free graph.

    Example:
    >>> layer = mmzoo.layers.FastGRU(64)
    >>> layer(np.zeros((2, 10, 8), "float32")).shape
    TensorShape([2, 64])
    """

    def _hoisting_applies(self) -> bool:
        cell = self.cell
        return bool(cell.reset_after and not cell.dropout and not cell.recurrent_dropout)

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not self._hoisting_applies() or _gpu_visible():
            return super().inner_loop(sequences, initial_state, mask, training=training)
        if isinstance(initial_state, (list, tuple)):
            initial_state = initial_state[0]
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        cell = self.cell
        units = cell.units
        dtype = sequences.dtype
        kernel = ops.cast(cell.kernel, dtype)
        recurrent_kernel = ops.cast(cell.recurrent_kernel, dtype)
        # The recurrent matmul in two parts (update+reset gates | candidate), so a step needs
        # no slicing of its result: fewer ops per step in an unrolled (TFLite) graph.
        kernel_zr, kernel_h = recurrent_kernel[:, : 2 * units], recurrent_kernel[:, 2 * units :]
        bias_zr = bias_h = None
        if cell.use_bias:
            input_bias = ops.cast(cell.bias[0], dtype)
            recurrent_bias = ops.cast(cell.bias[1], dtype)
            bias_zr, bias_h = recurrent_bias[: 2 * units], recurrent_bias[2 * units :]
        # One matmul for all steps: [batch, steps, features] @ [features, 3 * units].
        projected = ops.matmul(sequences, kernel)
        if cell.use_bias:
            projected = projected + input_bias

        def update(x_zr, x_h, h_tm1):
            inner_zr = ops.matmul(h_tm1, kernel_zr)
            inner_h = ops.matmul(h_tm1, kernel_h)
            if bias_zr is not None:
                inner_zr, inner_h = inner_zr + bias_zr, inner_h + bias_h
            z, r = ops.split(cell.recurrent_activation(x_zr + inner_zr), 2, axis=-1)
            hh = cell.activation(x_h + r * inner_h)
            # z * h_tm1 + (1 - z) * hh, in three ops.
            return hh + z * (h_tm1 - hh)

        if self.unroll and sequences.shape[1] is not None:
            return self._unrolled(update, projected, initial_state, mask)

        def step(x_t, states):
            h_tm1 = states[0] if isinstance(states, (list, tuple)) else states
            h = update(x_t[:, : 2 * units], x_t[:, 2 * units :], h_tm1)
            return h, [h]

        return keras_backend.rnn(
            step,
            projected,
            [initial_state],
            go_backwards=self.go_backwards,
            mask=mask,
            unroll=self.unroll,
            input_length=sequences.shape[1],
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
        )

    def _unrolled(self, update, projected, state, mask):
        """The time loop written out, with the semantics of the looped GRU: a masked step keeps
        the previous state, and the output of a step is the state, or zero before the first
        unmasked step (with ``zero_output_for_mask``: zero at every masked step).

        Written for small TFLite graphs: the per-step inputs and mask come from one unstack
        each (no per-step slicing), a step is 11 ops plus one ``where`` for the mask, and the
        outputs are derived from the states after the loop.
        """
        units = self.cell.units
        steps = projected.shape[1]
        order = list(range(steps - 1, -1, -1)) if self.go_backwards else list(range(steps))
        x_zr = ops.unstack(projected[:, :, : 2 * units], axis=1)
        x_h = ops.unstack(projected[:, :, 2 * units :], axis=1)
        keep = None
        if mask is not None:
            mask = ops.cast(mask, "bool")
            keep = ops.unstack(ops.expand_dims(mask, -1), axis=1)
        states = []
        for t in order:
            h = update(x_zr[t], x_h[t], state)
            state = h if keep is None else ops.where(keep[t], h, state)
            states.append(state)
        if keep is None:
            outputs = states
        else:
            in_order = [keep[t] for t in order]
            if self.zero_output_for_mask:
                valid = in_order
            elif self.return_sequences:  # zero until the first unmasked step, then the state
                seen = ops.cumsum(ops.cast(ops.stack(in_order, axis=1), "int32"), axis=1) > 0
                valid = ops.unstack(seen, axis=1)
            else:
                valid = [ops.any(mask, axis=1, keepdims=True)]
            if self.return_sequences:
                outputs = [ops.where(v, s, 0.0) for v, s in zip(valid, states)]
            else:
                outputs = [ops.where(valid[-1], states[-1], 0.0)]
        last = outputs[-1]
        stacked = ops.stack(outputs, axis=1) if self.return_sequences else ops.expand_dims(last, 1)
        return last, stacked, [state]


def _gpu_visible() -> bool:
    if keras.backend.backend() != "tensorflow":
        return False
    return bool(tf.config.list_logical_devices("GPU"))
