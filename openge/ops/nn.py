"""Op family nn: convolution, pooling, normalization, softmax, matmul and padding (ops layer).

Interfaces follow CANN's REG_OP prototypes (input names and order, attr names and defaults).
Layout decisions (also in each schema's ``doc``):

* ``Conv2D`` / ``Conv2DTranspose``: ``data_format="NCHW"`` reads the filter as NCHW
  ``(Cout, Cin/groups, kh, kw)``; ``data_format="NHWC"`` reads it as HWCN
  ``(kh, kw, Cin/groups, Cout)`` — the pairs CANN's prototypes list. CANN also accepts an HWCN
  filter with an NCHW ``x``; a kernel cannot see tensor formats, so openge rejects that pair at
  inference (insert a TransData/Transpose). For ``Conv2DTranspose`` the filter is the forward
  convolution's: NCHW ``(C_x, C_y/groups, kh, kw)``, HWCN ``(kh, kw, C_y/groups, C_x)``.
* ``BNInference`` and ``LRN`` have no ``data_format`` attr: the channel axis is 1 (NCHW / ND);
  an ``x`` whose desc says NHWC is rejected at inference.
* float16 math runs in float32 (like the Ascend cube/vector units' fp32 accumulation) and is
  rounded once at the end; int8 convolutions accumulate exactly and produce int32.

The ops live in one module per family (conv, conv_transpose, pooling, normalization, softmax,
matmul, padding; shared helpers in nn_common); this module gathers their schemas.
"""

from __future__ import annotations

from openge.ops import conv, conv_transpose, matmul, normalization, padding, pooling, softmax

SCHEMAS = [
    *conv.SCHEMAS,
    *conv_transpose.SCHEMAS,
    *pooling.SCHEMAS,
    *normalization.SCHEMAS,
    *softmax.SCHEMAS,
    *matmul.SCHEMAS,
    *padding.SCHEMAS,
]

__all__ = ["SCHEMAS"]
