"""A GRU that hoists its input projection out of the time loop on CPU."""

from __future__ import annotations

import keras
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
        kernel = ops.cast(cell.kernel, sequences.dtype)
        recurrent_kernel = ops.cast(cell.recurrent_kernel, sequences.dtype)
        if cell.use_bias:
            input_bias = ops.cast(cell.bias[0], sequences.dtype)
            recurrent_bias = ops.cast(cell.bias[1], sequences.dtype)
        # One matmul for all steps: [batch, steps, features] @ [features, 3 * units].
        projected = ops.matmul(sequences, kernel)
        if cell.use_bias:
            projected = projected + input_bias

        def step(x_t, states):
            h_tm1 = states[0] if isinstance(states, (list, tuple)) else states
            inner = ops.matmul(h_tm1, recurrent_kernel)
            if cell.use_bias:
                inner = inner + recurrent_bias
            x_z, x_r, x_h = x_t[:, :units], x_t[:, units : 2 * units], x_t[:, 2 * units :]
            r_z, r_r, r_h = inner[:, :units], inner[:, units : 2 * units], inner[:, 2 * units :]
            z = cell.recurrent_activation(x_z + r_z)
            r = cell.recurrent_activation(x_r + r_r)
            hh = cell.activation(x_h + r * r_h)
            h = z * h_tm1 + (1 - z) * hh
            return h, [h]

        if self.unroll and sequences.shape[1] is not None:
            return self._unrolled(step, projected, initial_state, mask)
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

    def _unrolled(self, step, projected, state, mask):
        """The time loop written out, with the semantics of the looped GRU: a masked step keeps
        the previous state and output (the output starts at zero). The mask is sliced per step
        and broadcast by ``where`` (no per-step tiling: fewer ops in a TFLite graph)."""
        steps = projected.shape[1]
        order = range(steps - 1, -1, -1) if self.go_backwards else range(steps)
        keep = None if mask is None else ops.cast(mask, "bool")
        outputs, masks, output = [], [], None
        for t in order:
            h, _ = step(projected[:, t, :], [state])
            if keep is None:
                output = state = h
            else:
                m = keep[:, t : t + 1]
                output = ops.where(m, h, 0.0 if output is None else output)
                state = ops.where(m, h, state)
                masks.append(m)
            if self.return_sequences:
                outputs.append(output)
        last = output
        if keep is not None and self.zero_output_for_mask:
            last = ops.where(masks[-1], last, 0.0)
            outputs = [ops.where(m, o, 0.0) for o, m in zip(outputs, masks)]
        stacked = ops.stack(outputs, axis=1) if self.return_sequences else ops.expand_dims(last, 1)
        return last, stacked, [state]


def _gpu_visible() -> bool:
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))
