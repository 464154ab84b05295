"""Which ONNX operators and tensor ranks TensorRT 8.6 and 10.x import natively.

The allow-list is the intersection of the ONNX-TensorRT operator support matrices of
TensorRT 8.6 and 10.x, narrowed to what an image-to-image fusion graph may contain, with the
restrictions that matter here: GridSample on rank-4 tensors only (a 5-D, trilinear grid sample
needs a plugin), Resize in ``nearest``/``linear`` modes only (``cubic`` is not in the
matrices), Pad in ``constant`` mode only, Conv weights and InstanceNormalization scale/bias
as constants, at most 8 dimensions per tensor, and no float64 tensors.
"""

from __future__ import annotations

#: ONNX op types imported natively by both TensorRT 8.6 and 10.x (no plugins).
TENSORRT_NATIVE_OPS = frozenset({
    "Abs", "Add", "And", "ArgMax", "ArgMin", "AveragePool", "BatchNormalization", "Cast",
    "Ceil", "Clip", "Concat", "Constant", "ConstantOfShape", "Conv", "ConvTranspose",
    "DepthToSpace", "Div", "Dropout", "Elu", "Equal", "Erf", "Exp", "Expand", "Flatten",
    "Floor", "Gather", "GatherElements", "GatherND", "Gemm", "GlobalAveragePool",
    "GlobalMaxPool", "Greater", "GreaterOrEqual", "GridSample", "HardSigmoid", "Identity",
    "InstanceNormalization", "LeakyRelu", "Less", "LessOrEqual", "Log", "MatMul", "Max",
    "MaxPool", "Mean", "Min", "Mul", "Neg", "Not", "Or", "Pad", "Pow", "PRelu", "Reciprocal",
    "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare",
    "Relu", "Reshape", "Resize", "Round", "Selu", "Shape", "Sigmoid", "Sign", "Slice",
    "Softmax", "Softplus", "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub", "Sum", "Tanh",
    "Tile", "Transpose", "Unsqueeze", "Where",
})

#: Largest tensor rank TensorRT accepts.
MAX_RANK = 8

_GRID_SAMPLE_MODES = frozenset({"bilinear", "nearest"})
_RESIZE_MODES = frozenset({"nearest", "linear"})
_RESIZE_TRANSFORMS = frozenset({"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn",
                                "asymmetric", "align_corners"})
#: Inputs that must be build-time constants: op -> input positions.
_CONSTANT_INPUTS = {"Conv": (1,), "InstanceNormalization": (1, 2), "Slice": (3,),
                    "Squeeze": (1,), "Unsqueeze": (1,)}


def tensorrt_problems(model) -> list[str]:
    """Every reason TensorRT 8.6 / 10.x could not import ``model`` natively.

    Args:
        model: an ``onnx.ModelProto``.

    Returns:
        Human-readable problems, one per offending node or tensor; empty when the graph uses
        only allow-listed operators within their rank and attribute restrictions.
    """
    import onnx
    from onnx import TensorProto

    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    graph = inferred.graph
    ranks: dict[str, int] = {}
    dtypes: dict[str, int] = {}
    for info in [*graph.input, *graph.output, *graph.value_info]:
        tensor_type = info.type.tensor_type
        dtypes[info.name] = tensor_type.elem_type
        if tensor_type.HasField("shape"):
            ranks[info.name] = len(tensor_type.shape.dim)
    for initializer in graph.initializer:
        ranks[initializer.name] = len(initializer.dims)
        dtypes[initializer.name] = initializer.data_type
    constants = {init.name for init in graph.initializer}
    constants |= {out for node in graph.node if node.op_type == "Constant" for out in node.output}

    problems = []
    for node in graph.node:
        label = f"{node.op_type} node {node.name or '(unnamed)'}"
        if node.domain not in ("", "ai.onnx"):
            problems.append(f"{label}: custom domain {node.domain!r} needs a plugin")
            continue
        if node.op_type not in TENSORRT_NATIVE_OPS:
            problems.append(f"{label}: operator {node.op_type} is not imported natively by "
                            "TensorRT 8.6 and 10.x")
            continue
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        problems += _attribute_problems(label, node.op_type, attributes)
        for position in _CONSTANT_INPUTS.get(node.op_type, ()):
            if position < len(node.input) and node.input[position] \
                    and node.input[position] not in constants:
                problems.append(f"{label}: input {position} ({node.input[position]}) must be a "
                                "constant for TensorRT")
        if node.op_type == "GridSample":
            for name in node.input[:2]:
                if ranks.get(name) != 4:
                    problems.append(f"{label}: input {name} has rank {ranks.get(name, '?')}; "
                                    "TensorRT's GridSample accepts only rank-4 tensors")
        for name in [*node.input, *node.output]:
            if ranks.get(name, 0) > MAX_RANK:
                problems.append(f"{label}: tensor {name} has rank {ranks[name]} > {MAX_RANK}")
            if dtypes.get(name) == TensorProto.DOUBLE:
                problems.append(f"{label}: tensor {name} is float64")
    return problems


def _attribute_problems(label: str, op_type: str, attributes: dict) -> list[str]:
    def text(name: str, default: str) -> str:
        value = attributes.get(name, default)
        return value.decode() if isinstance(value, bytes) else str(value)

    problems = []
    if op_type == "GridSample" and text("mode", "bilinear") not in _GRID_SAMPLE_MODES:
        problems.append(f"{label}: mode {text('mode', 'bilinear')!r} (allowed: "
                        f"{', '.join(sorted(_GRID_SAMPLE_MODES))})")
    if op_type == "Resize":
        if text("mode", "nearest") not in _RESIZE_MODES:
            problems.append(f"{label}: Resize mode {text('mode', 'nearest')!r} is not in the "
                            "TensorRT 8.6/10.x ONNX support matrix (nearest, linear)")
        if text("coordinate_transformation_mode", "half_pixel") not in _RESIZE_TRANSFORMS:
            problems.append(f"{label}: coordinate transformation "
                            f"{text('coordinate_transformation_mode', 'half_pixel')!r}")
    if op_type == "Pad" and text("mode", "constant") != "constant":
        problems.append(f"{label}: Pad mode {text('mode', 'constant')!r} (only 'constant' is "
                        "imported natively by TensorRT 8.6)")
    return problems
