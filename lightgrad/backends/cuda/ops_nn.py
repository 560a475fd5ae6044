"""Fused NN primitives: softmax, norms, cross-entropy, attention and AdamW (kernels:
softmax.cu, norm.cu, loss.cu, attention.cu, adamw.cu).

Each matches its NumPy twin in ``backends/cpu.py``: the same formulas in the same order,
results in the input's dtype, float32 math for float16/bfloat16. Strided inputs are read
through their layouts (no copies); outputs are new contiguous buffers.

>>> import lightgrad as lg                                             # doctest: +SKIP
>>> lg.tensor([[1.0, 1.0]], device="cuda").softmax(-1).tolist()        # doctest: +SKIP
[[0.5, 0.5]]
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from . import launch
from .array import DeviceArray, broadcast_strides, merged_layout
from .backend import FLOATS, suffix
from .runtime import layout

_COLUMNS_MIN_INNER = 32   # softmax over a non-last axis: one thread per column from here


def _float_suffix(dtype: Any, op: str) -> str:
    sfx = suffix(dtype, op)
    if sfx not in FLOATS:
        raise TypeError(f"{op}: needs a floating-point input on cuda, got {np.dtype(dtype)}")
    return sfx


def _acc_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype kernels compute in: float64 for float64, float32 for the others."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def _moved_last(x: DeviceArray, axis: int) -> DeviceArray:
    """A view of ``x`` with ``axis`` moved to the end."""
    order = [a for a in range(x.ndim) if a != axis] + [axis]
    return x.view(tuple(x.shape[a] for a in order), tuple(x.strides[a] for a in order))


def _matrices(x: DeviceArray, batch: tuple, rows: int, cols: int) -> tuple:
    """(batch layout, row stride, column stride) reading ``x`` as ``batch + (rows, cols)``
    matrices, broadcasting (missing or size-1 axes read with stride 0)."""
    lead = len(batch) + 2 - x.ndim
    view = x.view((1,) * lead + x.shape, (0,) * lead + x.strides)
    _, strides = broadcast_strides(view, tuple(batch) + (rows, cols))
    return (layout(*merged_layout(tuple(batch), strides[:-2])), strides[-2], strides[-1])


class NNOps:
    """Mixin of CUDABackend (see backend.py for the shared helpers)."""

    # --- softmax (softmax.cu)
    def softmax(self, x: DeviceArray, axis: int) -> DeviceArray:
        return self._nn_softmax(x, axis, False)

    def log_softmax(self, x: DeviceArray, axis: int) -> DeviceArray:
        return self._nn_softmax(x, axis, True)

    def _nn_softmax(self, x: DeviceArray, axis: int, as_log: bool) -> DeviceArray:
        op = "log_softmax" if as_log else "softmax"
        sfx = _float_suffix(x.dtype, op)
        result = out = self.empty(x.shape, x.dtype)
        if x.ndim == 0:  # one element: a row of length 1
            x, out, axis = x.view((1,), (0,)), out.view((1,), (1,)), 0
        axis %= x.ndim
        k = x.shape[axis]
        if x.size == 0:
            return result
        outer, inner = math.prod(x.shape[:axis]), math.prod(x.shape[axis + 1:])
        sms = self.rt.multiprocessor_count
        if inner >= _COLUMNS_MIN_INNER:
            grid, block = launch.elementwise(outer * inner, sms)
            self.kernel("softmax", f"softmax_columns_{sfx}")(
                grid, block, [outer, k, inner, x, x.layout(), out, out.layout(), as_log])
        else:
            xs, ys = _moved_last(x, axis), _moved_last(out, axis)
            m = x.size // k
            grid, block = launch.row_groups(m, k, sms)
            self.kernel("softmax", f"softmax_rows_{sfx}")(
                grid, block, [m, k, xs, xs.layout(), ys, ys.layout(), as_log])
        return result

    # --- normalisation (norm.cu)
    def _nn_rows(self, family: str, name: str, m: int, k: int, args: list) -> None:
        """Launch a row kernel over ``m`` rows of ``k`` elements."""
        if m == 0:
            return
        grid, block = launch.row_groups(m, k, self.rt.multiprocessor_count)
        self.kernel(family, name)(grid, block, args)

    def _nn_param(self, p: DeviceArray | None, dtype: np.dtype) -> DeviceArray | None:
        """An affine parameter or statistic as a contiguous buffer of ``dtype``."""
        if p is None:
            return None
        return self.contiguous(p) if p.dtype == dtype else self.astype(p, dtype)

    def layer_norm(self, x, weight, bias, n_axes, eps) -> tuple:
        sfx = _float_suffix(x.dtype, "layer_norm")
        lead = x.shape[:x.ndim - n_axes]
        m, k = math.prod(lead), math.prod(x.shape[x.ndim - n_axes:])
        stats_shape = lead + (1,) * n_axes
        y = self.empty(x.shape, x.dtype)
        mean, rstd = self.empty(stats_shape, x.dtype), self.empty(stats_shape, x.dtype)
        self._nn_rows("norm", f"layer_norm_{sfx}", m, k,
                   [m, k, x, x.layout(), self._nn_param(weight, x.dtype),
                    self._nn_param(bias, x.dtype), eps, y, mean, rstd])
        return y, mean, rstd

    def layer_norm_backward(self, g, x, weight, mean, rstd, n_axes) -> tuple:
        sfx = _float_suffix(x.dtype, "layer_norm_backward")
        param_shape = x.shape[x.ndim - n_axes:]
        m, k = math.prod(x.shape[:x.ndim - n_axes]), math.prod(param_shape)
        weight = self._nn_param(weight, x.dtype)
        mean, rstd = self._nn_param(mean, x.dtype), self._nn_param(rstd, x.dtype)
        dx = self.empty(x.shape, x.dtype)
        self._nn_rows("norm", f"layer_norm_backward_{sfx}", m, k,
                   [m, k, g, g.layout(x.shape), x, x.layout(), weight, mean, rstd, dx])
        # dweight, dbias: column sums over the rows, per chunk of rows, then over chunks
        acc = _acc_dtype(x.dtype)
        grid, block, chunks = launch.column_sums(m, k, self.rt.multiprocessor_count)
        dw = self.empty((chunks, k), acc) if weight is not None else None
        db = self.empty((chunks, k), acc)
        if k:
            chunk_rows = (m + chunks - 1) // chunks
            self.kernel("norm", f"layer_norm_param_grads_{sfx}")(
                grid, block, [m, k, chunk_rows, g, g.layout(x.shape), x, x.layout(), mean,
                              rstd, dw, db])
        return dx, self._nn_chunk_total(dw, param_shape, x.dtype), \
            self._nn_chunk_total(db, param_shape, x.dtype)

    def _nn_chunk_total(self, partial: DeviceArray | None, shape: tuple,
                        dtype: np.dtype) -> DeviceArray | None:
        """The sum of (chunks, K) partial column sums, shaped ``shape``, in ``dtype``."""
        if partial is None:
            return None
        total = partial if partial.shape[0] == 1 else self.reduce("sum", partial, (0,), False)
        total = total.view(shape, self.strides_of(shape))
        return total if total.dtype == dtype else self.astype(total, dtype)

    def rms_norm(self, x, weight, n_axes, eps) -> tuple:
        sfx = _float_suffix(x.dtype, "rms_norm")
        lead = x.shape[:x.ndim - n_axes]
        m, k = math.prod(lead), math.prod(x.shape[x.ndim - n_axes:])
        y, rstd = self.empty(x.shape, x.dtype), self.empty(lead + (1,) * n_axes, x.dtype)
        self._nn_rows("norm", f"rms_norm_{sfx}", m, k,
                   [m, k, x, x.layout(), self._nn_param(weight, x.dtype), eps, y, rstd])
        return y, rstd

    def batch_norm_stats(self, x) -> tuple:
        sfx = _float_suffix(x.dtype, "batch_norm_stats")
        c = x.shape[1]
        k = x.size // c if c else 0
        # a view (C, N, *spatial): row c walks channel c's values
        order = (1, 0) + tuple(range(2, x.ndim))
        rows = x.view(tuple(x.shape[a] for a in order), tuple(x.strides[a] for a in order))
        mean, var = self.empty((c,), x.dtype), self.empty((c,), x.dtype)
        self._nn_rows("norm", f"row_moments_{sfx}", c, k, [c, k, rows, rows.layout(), mean, var])
        return mean, var

    def batch_norm(self, x, weight, bias, mean, var, eps) -> DeviceArray:
        sfx = _float_suffix(x.dtype, "batch_norm")
        c = x.shape[1]
        inner = math.prod(x.shape[2:])
        y = self.empty(x.shape, x.dtype)
        args = [x.size, c, inner, x, x.layout()] + \
            [self._nn_param(p, x.dtype) for p in (weight, bias, mean, var)] + [eps, y]
        self.launch_elementwise(self.kernel("norm", f"batch_norm_{sfx}"), x.size, args)
        return y

    # --- cross-entropy (loss.cu)
    def _nn_targets(self, target: DeviceArray, shape: tuple) -> tuple:
        """(class indices or None, probabilities or None, layout) of a target buffer."""
        if target.ndim == 2:
            return None, target, target.layout(shape)
        if target.dtype != np.int64:
            target = self.astype(target, np.int64)
        return target, None, target.layout()

    def cross_entropy(self, x, target, weight, ignore_index, label_smoothing) -> tuple:
        sfx = _float_suffix(x.dtype, "cross_entropy")
        m, c = x.shape
        index, soft, lt = self._nn_targets(target, x.shape)
        if soft is not None and soft.dtype != x.dtype:
            soft = self.astype(soft, x.dtype)
        loss, counted = self.empty((m,), x.dtype), self.empty((m,), x.dtype)
        probs = self.empty((m, c), x.dtype)
        self._nn_rows("loss", f"cross_entropy_{sfx}", m, c,
                   [m, c, x, x.layout(), index, soft, lt, self._nn_param(weight, x.dtype),
                    ignore_index, label_smoothing, loss, probs, counted])
        return loss, probs, counted

    def cross_entropy_backward(self, probs, target, weight, scale, ignore_index,
                               label_smoothing) -> DeviceArray:
        sfx = _float_suffix(probs.dtype, "cross_entropy_backward")
        m, c = probs.shape
        index, soft, lt = self._nn_targets(target, probs.shape)
        if soft is not None and soft.dtype != probs.dtype:
            soft = self.astype(soft, probs.dtype)
        scale = self._nn_param(scale, probs.dtype)
        gx = self.empty((m, c), probs.dtype)
        self._nn_rows("loss", f"cross_entropy_backward_{sfx}", m, c,
                   [m, c, probs, probs.layout(), index, soft, lt,
                    self._nn_param(weight, probs.dtype), scale, scale.layout((m,)), ignore_index,
                    label_smoothing, gx])
        return gx

    # --- attention (attention.cu)
    def _nn_attention_tiles(self, e: int, ev: int, dtype: np.dtype,
                            with_values: bool) -> tuple:
        return launch.attention_tiles(e, ev, _acc_dtype(dtype).itemsize,
                                      self.rt.max_shared_memory, with_values)

    def scaled_dot_product_attention(self, q, k, v, mask, scale, is_causal, keep) -> tuple:
        sfx = _float_suffix(q.dtype, "scaled_dot_product_attention")
        (n_q, e), n_k, ev = q.shape[-2:], k.shape[-2], v.shape[-1]
        mask_batch = mask.shape[:-2] if mask is not None else ()
        # probs broadcast over q, k and the mask; out also over v and the dropout mask
        batch = tuple(np.broadcast_shapes(q.shape[:-2], k.shape[:-2], mask_batch))
        out_batch = tuple(np.broadcast_shapes(
            batch, v.shape[:-2], keep.shape[:-2] if keep is not None else ()))
        acc = _acc_dtype(q.dtype)
        probs = self.empty(batch + (n_q, n_k), acc)
        out = self.empty(out_batch + (n_q, ev), q.dtype)
        if probs.size:
            keep_mask = add_mask = None
            mask_layout, mask_rs, mask_cs = layout((1,), (0,)), 0, 0
            if mask is not None:
                if mask.dtype == np.bool_:
                    keep_mask = mask
                else:
                    add_mask = mask = self._nn_param(mask, q.dtype)
                mask_layout, mask_rs, mask_cs = _matrices(mask, batch, n_q, n_k)
            bm, bn, threads, shared = self._nn_attention_tiles(e, ev, q.dtype, False)
            grid = ((n_q + bm - 1) // bm, max(1, min(math.prod(batch), 65535)))
            self.kernel("attention", f"attn_probs_{sfx}")(
                grid, (threads,),
                [math.prod(batch), n_q, n_k, e, q, *_matrices(q, batch, n_q, e), k,
                 *_matrices(k, batch, n_k, e), keep_mask, add_mask, mask_layout, mask_rs,
                 mask_cs, scale, is_causal, bm, bn, probs], shared_mem=shared)
        if out.size:
            if keep is not None:
                keep = self._nn_param(keep, q.dtype)
                keep_args = [keep, *_matrices(keep, out_batch, n_q, n_k)]
            else:
                keep_args = [None, layout((1,), (0,)), 0, 0]
            grid, block = launch.batched_tiles(n_q, ev, math.prod(out_batch))
            self.kernel("attention", f"attn_pv_{sfx}")(
                grid, block, [math.prod(out_batch), n_q, n_k, ev, probs,
                              *_matrices(probs, out_batch, n_q, n_k), *keep_args, v,
                              *_matrices(v, out_batch, n_k, ev), out])
        return out, probs if acc == q.dtype else self.astype(probs, q.dtype)

    def flash_attention(self, q: DeviceArray, k: DeviceArray, v: DeviceArray, scale: float,
                        is_causal: bool) -> tuple[DeviceArray, DeviceArray]:
        """(out, logsumexp): ``softmax(q @ k^T * scale) @ v`` (keys j <= query i with
        ``is_causal``) by the fused FlashAttention-style kernel, which never stores the
        L x S matrix; logsumexp (..., L) is each row's log-sum-exp of the scaled scores in
        the compute dtype (float32 for halves). q (..., L, E), k (..., S, E),
        v (..., S, Ev); batch dims broadcast."""
        sfx = _float_suffix(q.dtype, "flash_attention")
        for name, t in (("k", k), ("v", v)):
            if t.dtype != q.dtype:
                raise TypeError(f"flash_attention: {name} has dtype {t.dtype}, q has "
                                f"{q.dtype}")
        (n_q, e), n_k, ev = q.shape[-2:], k.shape[-2], v.shape[-1]
        batch = tuple(np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2]))
        out = self.empty(batch + (n_q, ev), q.dtype)
        lse = self.empty(batch + (n_q,), _acc_dtype(q.dtype))
        if lse.size:
            bm, bn, threads, shared = self._nn_attention_tiles(e, ev, q.dtype, True)
            grid = ((n_q + bm - 1) // bm, max(1, min(math.prod(batch), 65535)))
            self.kernel("attention", f"flash_attention_forward_{sfx}")(
                grid, (threads,),
                [math.prod(batch), n_q, n_k, e, ev, q, *_matrices(q, batch, n_q, e), k,
                 *_matrices(k, batch, n_k, e), v, *_matrices(v, batch, n_k, ev), scale,
                 is_causal, bm, bn, out, lse], shared_mem=shared)
        return out, lse

    # --- optimizer (adamw.cu)
    @staticmethod
    def _nn_adam_constants(lr: float, beta1: float, beta2: float, eps: float,
                        weight_decay: float, step: int) -> list:
        """decay, beta1, beta2, sqrt(1 - beta2**step), eps, lr / (1 - beta1**step)."""
        return [1 - lr * weight_decay, beta1, beta2, math.sqrt(1 - beta2 ** step), eps,
                lr / (1 - beta1 ** step)]

    def adamw_step(self, param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps,
                   weight_decay, step) -> None:
        sfx = _float_suffix(param.dtype, "adamw_step")
        if grad.dtype != param.dtype:
            grad = self.astype(grad, param.dtype)
        shape = param.shape
        self.launch_elementwise(
            self.kernel("adamw", f"adamw_step_{sfx}"), param.size,
            [param.size, param, param.layout(), grad, grad.layout(shape), exp_avg,
             exp_avg.layout(), exp_avg_sq, exp_avg_sq.layout(),
             *self._nn_adam_constants(lr, beta1, beta2, eps, weight_decay, step)])

    def adamw_step_multi(self, params: Sequence[DeviceArray], grads: Sequence[DeviceArray],
                         exp_avgs: Sequence[DeviceArray], exp_avg_sqs: Sequence[DeviceArray],
                         lr: float, beta1: float, beta2: float, eps: float,
                         weight_decay: float, step: int) -> None:
        """``adamw_step`` on every (param, grad, exp_avg, exp_avg_sq) in ONE launch: the
        tensors must share a floating dtype; any that is not contiguous (or whose grad
        has another shape or dtype) is updated by ``adamw_step`` instead."""
        if not params:
            return
        dtype = params[0].dtype
        sfx = _float_suffix(dtype, "adamw_step_multi")
        fused = []
        for group in zip(params, grads, exp_avgs, exp_avg_sqs):
            if any(b.dtype != dtype for b in group):
                raise TypeError(f"adamw_step_multi: every tensor must be {dtype}, got "
                                f"{', '.join(str(b.dtype) for b in group)}")
            if all(b.is_contiguous and b.shape == group[0].shape for b in group):
                fused.append(group)
            else:
                self.adamw_step(*group, lr, beta1, beta2, eps, weight_decay, step)
        fused = [g for g in fused if g[0].size]
        if not fused:
            return
        chunk = launch.MULTI_TENSOR_CHUNK
        sizes = [g[0].size for g in fused]
        first = np.concatenate([[0], np.cumsum([(s + chunk - 1) // chunk for s in sizes])])
        table = np.concatenate([[g[i].ptr for g in fused] for i in range(4)] +
                               [sizes, first]).astype(np.int64)
        grid, block = launch.multi_tensor(int(first[-1]), self.rt.multiprocessor_count)
        self.kernel("adamw", f"adamw_multi_{sfx}")(
            grid, block, [len(fused), self.from_numpy(table), chunk,
                          *self._nn_adam_constants(lr, beta1, beta2, eps, weight_decay, step)])
