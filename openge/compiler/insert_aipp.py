"""Static AIPP insertion (``--insert_op_conf``): an ``Aipp`` node after the Data node it
configures, named ``<data>_<outidx>_aipp`` as GE names it; the Data becomes uint8 NHWC of the
source image's size and carries ``_data_related_aipp_mode = "static_aipp"``."""

from __future__ import annotations

from openge.compiler.aipp_config import (
    DEFAULT_INPUT_BIAS,
    DEFAULT_YUV2BGR,
    INPUT_FORMATS,
    AippParams,
)
from openge.compiler.boundary import insert_after
from openge.errors import PARAM_INVALID, SHAPE_INVALID, UNSUPPORTED, GeError
from openge.graph import DataType, Format, Graph, TensorDesc
from openge.ops.aipp import YUV400, YUV420SP, dynamic_params_size, input_shape, out_channels

AIPP_MODE_ATTR = "_data_related_aipp_mode"
DYNAMIC_AIPP_DATA = "ascend_dynamic_aipp_data"


def _fail(p: AippParams, message: str, code: int = PARAM_INVALID) -> GeError:
    return GeError(code, f"AIPP config (aipp_op at line {p.line}): {message}")


def aipp_attrs(p: AippParams, n: int, c: int, h: int, w: int, layout: Format) -> dict:
    """The Aipp node's attrs for a model input of ``n, c, h, w`` (GE's defaults applied;
    GeError naming the config line when the config does not fit the input)."""
    if not p.input_format:
        raise _fail(p, "input_format is required for static AIPP")
    if p.get("resize", False):
        raise _fail(p, "resize is not supported by openge", UNSUPPORTED)
    fmt = INPUT_FORMATS[p.input_format]
    if out_channels(fmt) != c:
        raise _fail(
            p,
            f"{p.input_format} gives {out_channels(fmt)} channels; the model input has {c}",
            SHAPE_INVALID,
        )
    pad = [0, 0, 0, 0]
    if p.get("padding", False):
        pad = [p.get(f"{k}_padding_size") for k in ("top", "bottom", "left", "right")]
    inner_h, inner_w = h - pad[0] - pad[1], w - pad[2] - pad[3]
    src_h = p.get("src_image_size_h") or (h if p.get("crop", False) else inner_h)
    src_w = p.get("src_image_size_w") or (w if p.get("crop", False) else inner_w)
    if p.get("crop", False):
        crop = [
            p.get("load_start_pos_h"),
            p.get("load_start_pos_w"),
            p.get("crop_size_h") or inner_h,
            p.get("crop_size_w") or inner_w,
        ]
    else:
        crop = [0, 0, src_h, src_w]
    if crop[2] != inner_h or crop[3] != inner_w:
        raise _fail(
            p,
            f"the image after crop ({crop[2]}x{crop[3]}) and padding ({pad}) is "
            f"{crop[2] + pad[0] + pad[1]}x{crop[3] + pad[2] + pad[3]}; the model input is {h}x{w}",
            SHAPE_INVALID,
        )
    if fmt == YUV420SP and (src_h % 2 or src_w % 2):
        raise _fail(p, f"YUV420SP source size {src_h}x{src_w} must be even", SHAPE_INVALID)
    csc = bool(p.get("csc_switch", False)) and fmt != YUV400
    keys = [f"matrix_r{r}c{k}" for r in range(3) for k in range(3)]
    given = [k for k in keys if k in p.values]
    if csc and not given and fmt != YUV420SP:
        raise _fail(p, "csc_switch with RGB input needs matrix_r0c0 .. matrix_r2c2")
    default = [v for row in DEFAULT_YUV2BGR for v in row]
    matrix = [p.get(k, default[i] if fmt == YUV420SP else 0) for i, k in enumerate(keys)]
    return {
        "input_format": fmt,
        "src_size": [src_h, src_w],
        "crop": crop,
        "csc_switch": csc,
        "rbuv_swap_switch": bool(p.get("rbuv_swap_switch", False)),
        "ax_swap_switch": bool(p.get("ax_swap_switch", False)),
        "matrix": matrix,
        "input_bias": [p.get(f"input_bias_{i}", DEFAULT_INPUT_BIAS[i]) for i in range(3)],
        "output_bias": [p.get(f"output_bias_{i}", 0) for i in range(3)],
        "mean_chn": [p.get(f"mean_chn_{i}", 0) for i in range(4)],
        "min_chn": [float(p.get(f"min_chn_{i}", 0.0)) for i in range(4)],
        "var_reci_chn": [float(p.get(f"var_reci_chn_{i}", 1.0)) for i in range(4)],
        "padding": pad,
        "padding_value": float(p.get("padding_value", p.get("cpadding_value", 0.0))),
        "output_format": int(layout),
    }


def insert_aipp(graph: Graph, blocks: list[AippParams]) -> None:
    """Insert one Aipp node per config block (``related_input_rank`` picks the input)."""
    data_nodes = sorted(graph.inputs, key=lambda n: n.attrs.get("index", 0))
    seen: set[int] = set()
    for p in blocks:
        rank = p.related_input_rank
        if not 0 <= rank < len(data_nodes):
            raise _fail(p, f"related_input_rank {rank}: the model has {len(data_nodes)} inputs")
        if rank in seen:
            raise _fail(p, f"input {rank} already has an aipp_op")
        seen.add(rank)
        data = data_nodes[rank]
        desc = data.output_descs[0]
        if len(desc.shape) != 4 or any(d <= 0 for d in desc.shape):
            raise _fail(
                p, f"input {data.name} is {list(desc.shape)}; AIPP needs a static 4-D input"
            )
        layout = Format.FORMAT_NHWC if desc.format == Format.FORMAT_NHWC else Format.FORMAT_NCHW
        if layout == Format.FORMAT_NHWC:
            n, h, w, c = desc.shape
        else:
            n, c, h, w = desc.shape
        features = TensorDesc(DataType.DT_FLOAT16, desc.shape, layout)
        if p.mode == "dynamic":
            node = _insert_dynamic(graph, p, data, n, c, h, w, layout, features)
        else:
            attrs = aipp_attrs(p, n, c, h, w, layout)
            src_h, src_w = attrs["src_size"]
            data.output_descs = [
                TensorDesc(
                    DataType.DT_UINT8,
                    input_shape(attrs["input_format"], n, src_h, src_w),
                    Format.FORMAT_NHWC,
                )
            ]
            data.attrs[AIPP_MODE_ATTR] = "static_aipp"
            node = insert_after(
                graph, data.output(0), "Aipp", f"{data.name}_0_aipp", attrs, features
            )
        if desc.dtype != DataType.DT_FLOAT16:
            insert_after(
                graph,
                node.output(0),
                "Cast",
                f"{data.name}_0_aipp_cast",
                {"dst_type": desc.dtype},
                TensorDesc(desc.dtype, desc.shape, layout),
            )


def _insert_dynamic(graph, p, data, n, c, h, w, layout, features):
    """Dynamic AIPP: the image input becomes ``[N, max_src_image_size]`` bytes and a new last
    input ``ascend_dynamic_aipp_data`` carries the parameters (``acl.mdl.set_input_aipp``)."""
    size = p.get("max_src_image_size")
    if size <= 0:
        raise _fail(p, "dynamic AIPP needs max_src_image_size > 0")
    if graph.has_node(DYNAMIC_AIPP_DATA):
        raise _fail(p, "openge supports one dynamic AIPP input per model", UNSUPPORTED)
    if c not in (1, 3):
        raise _fail(p, f"the model input has {c} channels; AIPP gives 1 or 3", SHAPE_INVALID)
    data.output_descs = [TensorDesc(DataType.DT_UINT8, (n, size), Format.FORMAT_ND)]
    data.attrs[AIPP_MODE_ATTR] = "dynamic_aipp"
    index = max(int(d.attrs.get("index", 0)) for d in graph.inputs) + 1
    params = graph.add_node(
        "Data",
        name=DYNAMIC_AIPP_DATA,
        attrs={"index": index},
        output_descs=[TensorDesc(DataType.DT_UINT8, (dynamic_params_size(n),), Format.FORMAT_ND)],
    )
    attrs = {"dynamic": True, "model_shape": [n, c, h, w], "output_format": int(layout)}
    return insert_after(
        graph,
        data.output(0),
        "Aipp",
        f"{data.name}_0_aipp",
        attrs,
        features,
        extra_inputs=(params.output(0),),
    )
