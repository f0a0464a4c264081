"""The neutral graph the linter works on: one representation for ONNX and TFLite.

The readers (:mod:`.onnx_reader`, :mod:`.tflite_reader`) turn a file into a :class:`Graph`; the
rules (:mod:`.rules`) and the mapping estimate (:mod:`.mapping`) only ever see this class.

Conventions:

* ``Node.kind`` is the operator in ONNX vocabulary (``Conv``, ``Pad``, ``Concat``, ...), whatever
  the file format; ``Node.op`` is the operator as the file spells it (``CONV_2D``, ``Conv``) and is
  what the user sees. Depthwise convolutions are ``kind="Conv"`` with ``attrs["depthwise"]``.
* Shapes are in the file's own axis order; ``Graph.layout`` says which one (``NCHW`` for ONNX,
  ``NHWC`` for TFLite) and :meth:`Graph.channel_axis` where the channels are. ``-1`` marks a dynamic
  or symbolic dimension; ``shape=None`` an unknown rank.
* ONNX QDQ models are folded on reading: a ``DequantizeLinear`` of a constant becomes an int8
  constant carrying its :class:`Quant`; a QuantizeLinear/DequantizeLinear pair around a quantised
  operator disappears and the operator's tensors become int8 with their :class:`Quant`, exactly as a
  TFLite int8 model stores them. Only real conversions stay as nodes: the float input's
  ``QuantizeLinear`` and the ``DequantizeLinear`` before a float output or a float operator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

FLOAT_DTYPES = frozenset({"float32", "float16", "bfloat16", "float64"})
QUANT_DTYPES = frozenset({"int8", "uint8", "int16", "uint16", "int4", "uint4", "int32"})

_ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1, "uint8": 1,
             "int16": 2, "uint16": 2, "int32": 4, "uint32": 4, "int64": 8, "uint64": 8,
             "bool": 1, "int4": 0.5, "uint4": 0.5, "complex64": 8, "complex128": 16}


def itemsize(dtype: str) -> float:
    """Bytes per element (0 for strings and unknown types)."""
    return _ITEMSIZE.get(dtype, 0)


@dataclass
class Quant:
    """Affine quantisation parameters: real = scale * (q - zero_point)."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None  #: quantised dimension when per-channel

    @property
    def per_channel(self) -> bool:
        return np.size(self.scale) > 1


@dataclass
class Tensor:
    name: str
    dtype: str  #: numpy-style name: float32, float16, int8, uint8, int32, int64, ...
    shape: tuple | None = None  #: -1 for a dynamic dimension; None when the rank is unknown
    const: bool = False
    data: np.ndarray | None = None
    quant: Quant | None = None
    origin: str = ""  #: "dq" when the constant was folded from a DequantizeLinear

    @property
    def quantized(self) -> bool:
        return self.quant is not None and self.dtype in QUANT_DTYPES

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def static(self) -> bool:
        return self.shape is not None and all(isinstance(d, (int, np.integer)) and d >= 0
                                              for d in self.shape)

    @property
    def numel(self) -> int | None:
        if self.data is not None:
            return int(np.size(self.data))
        if not self.static:
            return None
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int | None:
        n = self.numel
        return None if n is None else int(np.ceil(n * itemsize(self.dtype)))


@dataclass
class Node:
    name: str
    op: str  #: operator as the file names it (``CONV_2D``, ``Conv``)
    kind: str  #: operator in ONNX vocabulary (``Conv``, ``Pad``, ...)
    inputs: list = field(default_factory=list)  #: tensor names ("" = absent optional input)
    outputs: list = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    domain: str = ""


@dataclass
class Graph:
    path: str
    format: str  #: "onnx" | "tflite"
    layout: str  #: "NCHW" | "NHWC"
    nodes: list
    tensors: dict
    inputs: list  #: graph input tensor names (initializers excluded)
    outputs: list
    opset: int | None = None  #: ONNX default-domain opset
    notes: dict = field(default_factory=dict)  #: facts a reader found (e.g. unknown op codes)

    # -- structure ------------------------------------------------------------------------------
    def tensor(self, name: str) -> Tensor | None:
        return self.tensors.get(name) if name else None

    @cached_property
    def producer(self) -> dict:
        return {o: n for n in self.nodes for o in n.outputs if o}

    @cached_property
    def consumers(self) -> dict:
        out: dict = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    out.setdefault(i, []).append(n)
        return out

    def is_const(self, name: str) -> bool:
        t = self.tensor(name)
        return bool(t is not None and t.const)

    def activation_inputs(self, node: Node) -> list:
        """The node's non-constant inputs, as tensors (unknown names give a float32 stub)."""
        out = []
        for i in node.inputs:
            if not i or self.is_const(i):
                continue
            out.append(self.tensors.get(i) or Tensor(i, "float32"))
        return out

    def channel_axis(self, rank: int) -> int | None:
        """Index of the channel axis of a 4-D activation (None for other ranks)."""
        if rank != 4:
            return None
        return 1 if self.layout == "NCHW" else 3

    def const_value(self, name: str):
        t = self.tensor(name)
        return None if t is None or not t.const else t.data
