"""from_onnx: ONNX graphs (built with onnx.helper) converted to smpc.nn, against ONNX's reference evaluator in
plaintext and on shared tensors (2-party additive, 3-party aby3)."""

import functools
import subprocess
import sys

import numpy as np
import pytest

from protocol_matrix import one_per_protocol_pairs
import smpc
from importer_helpers import as_list, assert_relative, private_program
from smpc import nn

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

SETTINGS = one_per_protocol_pairs("nn", min_parties=2)  # party 0 owns the model, party 1 the data
OPSET = 17


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _model(nodes, inputs, outputs, initializers, name="net", opset=OPSET):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _f(rng, *shape, scale=0.5):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _bn(rng, prefix, c):
    return [_init(f"{prefix}.weight", 1 + _f(rng, c, scale=0.1)), _init(f"{prefix}.bias", _f(rng, c, scale=0.1)),
            _init(f"{prefix}.running_mean", _f(rng, c, scale=0.1)),
            _init(f"{prefix}.running_var", (1 + np.abs(_f(rng, c, scale=0.2))).astype(np.float32))]


def _bn_node(prefix, x, y, name):
    return helper.make_node("BatchNormalization", [x, f"{prefix}.weight", f"{prefix}.bias", f"{prefix}.running_mean",
                                                   f"{prefix}.running_var"], [y], name=name, epsilon=1e-5)


def small_cnn(seed=0, batch=1):
    """conv + BN + relu + max pool + gemm, torch's initializer names."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Conv", ["x", "conv1.weight", "conv1.bias"], ["c1"], name="/conv1/Conv", pads=[1, 1, 1, 1]),
        _bn_node("bn1", "c1", "b1", "/bn1/BatchNormalization"),
        helper.make_node("Relu", ["b1"], ["r1"], name="/relu/Relu"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="/pool/MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p1"], ["f1"], name="/Flatten", axis=1),
        helper.make_node("Gemm", ["f1", "fc.weight", "fc.bias"], ["y"], name="/fc/Gemm", transB=1),
    ]
    inits = [_init("conv1.weight", _f(rng, 4, 3, 3, 3)), _init("conv1.bias", _f(rng, 4, scale=0.1)),
             *_bn(rng, "bn1", 4), _init("fc.weight", _f(rng, 5, 64, scale=0.2)), _init("fc.bias", _f(rng, 5))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 5])
    return _model(nodes, [x], [y], inits, "SmallCNN")


def depthwise_block(seed=0):
    """MobileNet-style: depthwise conv (SAME_UPPER, stride 2) + BN + HardSwish, pointwise conv + BN + Clip(0, 6),
    a HardSigmoid gate, global average pooling, a gemm and a softmax; initializers without torch's names."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Conv", ["x", "dw_w"], ["d"], name="dw", group=4, kernel_shape=[3, 3], strides=[2, 2],
                         auto_pad="SAME_UPPER"),
        helper.make_node("BatchNormalization", ["d", "dw_s", "dw_b", "dw_m", "dw_v"], ["db"], name="dw_bn"),
        helper.make_node("HardSwish", ["db"], ["dh"], name="dw_act"),
        helper.make_node("Conv", ["dh", "pw_w", "pw_bias"], ["p"], name="pw", dilations=[1, 1], pads=[0, 0, 0, 0]),
        helper.make_node("BatchNormalization", ["p", "pw_s", "pw_b", "pw_m", "pw_v"], ["pb"], name="pw_bn"),
        helper.make_node("Clip", ["pb", "zero", "six"], ["pc"], name="relu6"),
        helper.make_node("HardSigmoid", ["pc"], ["gate"], name="gate"),
        helper.make_node("Mul", ["pc", "gate"], ["g"], name="gated"),
        helper.make_node("Conv", ["g", "dil_w"], ["dc"], name="dilated", dilations=[2, 2], pads=[2, 1, 2, 1],
                         group=2),
        helper.make_node("GlobalAveragePool", ["dc"], ["gp"], name="gap"),
        helper.make_node("Flatten", ["gp"], ["fl"], name="flatten"),
        helper.make_node("Gemm", ["fl", "head_w", "head_b"], ["logits"], name="head", transB=1),
        helper.make_node("Softmax", ["logits"], ["y"], name="softmax", axis=-1),
    ]
    inits = [_init("dw_w", _f(rng, 4, 1, 3, 3)), _init("pw_w", _f(rng, 6, 4, 1, 1)), _init("pw_bias", _f(rng, 6)),
             _init("dil_w", _f(rng, 6, 3, 3, 3, scale=0.3)), _init("head_w", _f(rng, 3, 6)),
             _init("head_b", _f(rng, 3)),
             _init("zero", np.array(0.0, np.float32)), _init("six", np.array(6.0, np.float32))]
    for prefix, c in (("dw", 4), ("pw", 6)):
        s, bias, m, v = (numpy_helper.to_array(t) for t in _bn(rng, "bn", c))
        inits += [_init(f"{prefix}_s", s), _init(f"{prefix}_b", bias), _init(f"{prefix}_m", m), _init(f"{prefix}_v", v)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 9, 9])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    return _model(nodes, [x], [y], inits, "DepthwiseBlock")


def shape_ops(seed=0):
    """Concat/Split/Transpose/Reshape, a Shape -> Gather -> Concat -> Reshape chain folded to constants,
    Squeeze/Unsqueeze (axes as inputs), Expand, Slice, ReduceMean, MatMul, arithmetic, AveragePool,
    Tanh/Sigmoid, Identity, Dropout, Constant and LogSoftmax; two outputs."""
    rng = np.random.default_rng(seed)
    c = helper.make_node
    nodes = [
        c("Split", ["x", "halves"], ["s0", "s1"], name="split", axis=1),
        c("Transpose", ["s1"], ["t1"], name="transpose", perm=[0, 1, 3, 2]),
        c("Concat", ["t1", "s0"], ["cat"], name="concat", axis=1),
        c("AveragePool", ["cat"], ["ap"], name="avgpool", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1],
          count_include_pad=1),
        c("Shape", ["ap"], ["shape"], name="shape"),
        c("Gather", ["shape", "zero_i"], ["batch"], name="gather", axis=0),
        c("Unsqueeze", ["batch", "axis0"], ["batch1"], name="unsqueeze_batch"),
        c("Concat", ["batch1", "minus_one"], ["target"], name="concat_shape", axis=0),
        c("Reshape", ["ap", "target"], ["flat"], name="reshape"),
        c("Constant", [], ["half"], name="const_half", value=_init("half_value", np.array(0.5, np.float32))),
        c("Mul", ["flat", "half"], ["m"], name="mul"),
        c("MatMul", ["m", "proj"], ["mm"], name="matmul"),
        c("Add", ["mm", "proj_bias"], ["a"], name="add"),
        c("Sub", ["a", "shift"], ["sb"], name="sub"),
        c("Div", ["sb", "two"], ["dv"], name="div"),
        c("Tanh", ["dv"], ["th"], name="tanh"),
        c("Identity", ["th"], ["id"], name="identity"),
        c("Dropout", ["id"], ["dr"], name="dropout"),
        c("Unsqueeze", ["dr", "axis1"], ["u"], name="unsqueeze"),
        c("Expand", ["u", "expand_to"], ["e"], name="expand"),
        c("Slice", ["e", "starts", "ends", "axes", "steps"], ["sl"], name="slice"),
        c("ReduceMean", ["sl"], ["rm"], name="reduce_mean", axes=[1], keepdims=0),
        c("Sigmoid", ["rm"], ["sg"], name="sigmoid"),
        c("LogSoftmax", ["sg"], ["y"], name="log_softmax", axis=1),
        c("Unsqueeze", ["s0", "axis1"], ["s0u"], name="unsqueeze_s0"),
        c("Squeeze", ["s0u", "axis1"], ["s0s"], name="squeeze_s0"),
        c("ReduceMean", ["s0s"], ["z"], name="reduce_all", keepdims=1),
    ]
    inits = [_init("halves", np.array([2, 2], np.int64)), _init("zero_i", np.array(0, np.int64)),
             _init("axis0", np.array([0], np.int64)), _init("minus_one", np.array([-1], np.int64)),
             _init("proj", _f(rng, 64, 6, scale=0.2)), _init("proj_bias", _f(rng, 6)),
             _init("shift", np.array(0.25, np.float32)), _init("two", np.array(2.0, np.float32)),
             _init("axis1", np.array([1], np.int64)), _init("expand_to", np.array([1, 3, 6], np.int64)),
             _init("starts", np.array([0, 1], np.int64)), _init("ends", np.array([10, 6], np.int64)),
             _init("axes", np.array([1, 2], np.int64)), _init("steps", np.array([1, 2], np.int64))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4, 4])
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 1, 1, 1])]
    return _model(nodes, [x], outs, inits, "ShapeOps")


MODELS = {"small_cnn": small_cnn, "depthwise": depthwise_block, "shape_ops": shape_ops}
SHAPES = {"small_cnn": (1, 3, 8, 8), "depthwise": (1, 4, 9, 9), "shape_ops": (1, 4, 4, 4)}


def image(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def reference(model, x) -> list[np.ndarray]:
    return ReferenceEvaluator(model).run(None, {model.graph.input[0].name: x})


@functools.lru_cache(maxsize=None)
def converted(name, seed=1):
    model = MODELS[name](seed)
    return model, nn.from_onnx(model)


# --- plaintext -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_plaintext_matches_the_reference_evaluator(name):
    model, ours = converted(name)
    for seed in (0, 1):
        x = image(SHAPES[name], seed)
        for got, want in zip(as_list(ours(x)), reference(model, x), strict=True):
            assert got.dtype == np.float64
            assert_relative(got, want, 1e-5)


def test_layers_state_dict_names_and_folding(tmp_path):
    model = small_cnn(1)
    path = tmp_path / "cnn.onnx"
    onnx.save(model, str(path))
    ours = nn.from_onnx(path)  # a file path works as well as a ModelProto
    assert ours.source == "SmallCNN"
    assert list(ours.state_dict()) == ["conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean",
                                       "bn1.running_var", "bn1.num_batches_tracked", "fc.weight", "fc.bias"]
    kinds = {s.module: type(ours.layer(s.module)).__name__ for s in ours.steps if s.module}
    assert kinds == {"conv1": "Conv2d", "bn1": "BatchNorm2d", "fc": "Linear"}
    folded = nn.fold_batchnorm(ours.copy())
    assert type(folded.layer("bn1")).__name__ == "Identity"
    x = image((1, 3, 8, 8))
    assert_relative(folded(x), reference(model, x)[0], 1e-6)
    _, depthwise = converted("depthwise")  # initializers without torch's names: layers at node names
    assert {"dw.weight", "dw_bn.running_var", "pw.bias", "head.weight"} <= set(depthwise.state_dict())
    assert type(nn.fold_batchnorm(depthwise.copy()).layer("pw_bn")).__name__ == "Identity"
    _, shapes = converted("shape_ops")
    assert set(shapes.state_dict()) == {"proj", "proj_bias", "shift", "two"}  # other float initializers
    where = [s.where for s in shapes.steps]  # the Shape -> Gather -> Concat chain was folded into a constant
    assert not {"shape", "gather", "unsqueeze_batch", "concat_shape"} & set(where)
    assert "reshape(avg_pool2d, [1, 64])" in repr(shapes)


def test_dynamic_batch_needs_input_shapes():
    model = small_cnn(1, batch="N")
    with pytest.raises(ValueError, match=r"static input shapes.*x: \(N, 3, 8, 8\).*input_shapes"):
        nn.from_onnx(model)
    ours = nn.from_onnx(model, input_shapes={"x": (2, 3, 8, 8)})
    x = image((2, 3, 8, 8))
    assert_relative(ours(x), reference(model, x)[0], 1e-5)
    assert nn.from_onnx(model, input_shapes=[(3, 3, 8, 8)]).inputs[0].shape == (3, 3, 8, 8)
    with pytest.raises(ValueError, match="does not fit"):
        nn.from_onnx(model, input_shapes={"x": (2, 4, 8, 8)})


def old_opset_and_functional_forms(seed=0):
    """Opset 11 forms (Split/Squeeze/ReduceMean axes as attributes, Softmax over the flattened trailing axes),
    one convolution weight used twice (a functional convolution with asymmetric pads), a Gemm with
    transB=0 and alpha, beta (functional), a HardSigmoid with ONNX's own alpha."""
    rng = np.random.default_rng(seed)
    c = helper.make_node
    nodes = [
        c("Conv", ["x", "w"], ["c1"], name="conv_a", pads=[0, 1, 1, 0]),
        c("Conv", ["c1", "w"], ["c2"], name="conv_b", auto_pad="SAME_LOWER", strides=[2, 2]),
        c("HardSigmoid", ["c2"], ["h"], name="hsig", alpha=0.3, beta=0.4),
        c("Split", ["h"], ["h0", "h1"], name="split", axis=1, split=[1, 1]),
        c("Sub", ["h0", "h1"], ["d"], name="sub"),
        c("Squeeze", ["d"], ["sq"], name="squeeze", axes=[1]),
        c("Reshape", ["sq", "to2d"], ["r"], name="reshape"),
        c("Gemm", ["r", "g_w", "g_b"], ["g"], name="gemm", alpha=0.5, beta=2.0),
        c("ReduceMean", ["x"], ["mx"], name="mean", axes=[2, 3], keepdims=1),
        c("Softmax", ["mx"], ["y2"], name="softmax_old", axis=1),
        c("Relu", ["g"], ["y1"], name="relu"),
    ]
    inits = [_init("w", _f(rng, 2, 2, 3, 3)), _init("to2d", np.array([1, -1], np.int64)),
             _init("g_w", _f(rng, 9, 4)), _init("g_b", _f(rng, 1, 4))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])
    outs = [helper.make_tensor_value_info("y1", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, 2, 1, 1])]
    return _model(nodes, [x], outs, inits, "OldOpset", opset=11)


def test_old_opset_and_functional_forms():
    model = old_opset_and_functional_forms(1)
    ours = nn.from_onnx(model)
    assert not [s.module for s in ours.steps if s.module]  # the shared weight and the Gemm stay functional
    assert {"w", "g_w", "g_b"} == set(ours.state_dict())
    x = image((1, 2, 6, 6), 2)
    for got, want in zip(ours(x), reference(model, x), strict=True):
        assert_relative(got, want, 1e-5)
    other = nn.from_onnx(old_opset_and_functional_forms(2))
    results = smpc.run(functools.partial(private_program, ours, other, x), parties=3, protocol="aby3", timeout=300)
    for got, want in zip(results[1], reference(model, x), strict=True):
        assert_relative(got, want, 2e-2)


# --- private inference ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol,parties", SETTINGS)
@pytest.mark.parametrize("name", MODELS)
def test_private_inference_matches_the_reference(name, protocol, parties):
    model, owner = converted(name, 1)
    _, other = converted(name, 2)  # only party 0's weights may count
    x = image(SHAPES[name], 3)
    results = smpc.run(functools.partial(private_program, owner, other, x), parties=parties, protocol=protocol,
                       timeout=300)
    assert results[0] == [None] * len(results[1])
    for got, want in zip(results[1], reference(model, x), strict=True):
        assert_relative(got, want, 2e-2)
        if want.ndim == 2:
            assert np.array_equal(got.argmax(axis=-1), want.argmax(axis=-1))


def _torch_exported(tmp_path):
    """A torch model through torch.onnx.export (the TorchScript exporter: the default one needs onnxscript)."""
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 6, 3, stride=2, padding=1)
            self.bn = torch.nn.BatchNorm2d(6)
            self.dw = torch.nn.Conv2d(6, 6, 3, padding=1, groups=6)
            self.act = torch.nn.Hardswish()
            self.drop = torch.nn.Dropout(0.3)
            self.fc = torch.nn.Linear(12, 4)

        def forward(self, x):
            y = self.act(self.bn(self.conv(x)))
            a, b = torch.split(self.dw(y), 3, dim=1)
            y = torch.cat([torch.relu(b), torch.nn.functional.relu6(a)], dim=1)
            y = torch.nn.functional.max_pool2d(y, 2)
            pooled = torch.cat([y.mean(dim=(2, 3)), torch.nn.functional.adaptive_avg_pool2d(y, 1).flatten(1)], 1)
            return torch.log_softmax(self.fc(self.drop(pooled.reshape(x.shape[0], -1))), dim=-1)

    torch.manual_seed(0)
    model = Net().eval()
    with torch.no_grad():
        for p in model.bn.parameters():
            p.add_(torch.rand_like(p) * 0.2)
        model.bn.running_var.add_(0.5)
    path = tmp_path / "net.onnx"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, (torch.randn(1, 3, 8, 8),), str(path), dynamo=False, input_names=["image"],
                              dynamic_axes={"image": {0: "batch"}})
        except Exception as err:  # the exporter is torch's business; the helper-built models cover the importer
            pytest.skip(f"torch.onnx.export failed here: {type(err).__name__}")
    return torch, model, path


def test_a_torch_exported_model_plaintext_and_private(tmp_path):
    torch, model, path = _torch_exported(tmp_path)
    with pytest.raises(ValueError, match="image: \\(batch, 3, 8, 8\\)"):
        nn.from_onnx(path)
    ours = nn.from_onnx(path, input_shapes={"image": (2, 3, 8, 8)})
    x = image((2, 3, 8, 8), 5)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert_relative(ours(x), want, 1e-5)
    results = smpc.run(functools.partial(private_program, ours, ours, x), parties=2, timeout=300)
    assert_relative(results[1][0], want, 2e-2)
    assert np.array_equal(results[1][0].argmax(axis=-1), want.argmax(axis=-1))


# --- a tiny BERT-like encoder ---------------------------------------------------------------------------------------
VOCAB, LENGTH, HIDDEN = 20, 6, 8


def tiny_encoder(seed=0, gelu_order="x_first"):
    """Token and position embeddings (Gather), LayerNormalization, one attention head (MatMul q/k/v, a constant
    additive mask and a Where with a constant condition before the Softmax), an erf-GELU feed-forward as
    exporters write it (Div, Erf, Add, Mul, Mul), Pow 2 and 3, Sqrt and Reciprocal."""
    rng = np.random.default_rng(seed)
    c = helper.make_node
    if gelu_order == "x_first":  # (x * (1 + erf)) * 0.5
        gelu = [c("Mul", ["f", "fa"], ["fm"], name="gelu_mul"), c("Mul", ["fm", "half"], ["g"], name="gelu_half")]
    else:  # (x * 0.5) * (1 + erf)
        gelu = [c("Mul", ["half", "f"], ["fh"], name="gelu_half"), c("Mul", ["fh", "fa"], ["g"], name="gelu_mul")]
    nodes = [
        c("Gather", ["embeddings.word.weight", "ids"], ["tok"], name="/word/Gather"),
        c("Gather", ["embeddings.position.weight", "positions"], ["pos"], name="/position/Gather"),
        c("Add", ["tok", "pos"], ["e"], name="/embeddings/Add"),
        c("LayerNormalization", ["e", "ln.weight", "ln.bias"], ["h"], name="/ln/LayerNormalization", axis=-1,
          epsilon=1e-5),
        c("MatMul", ["h", "wq"], ["q"], name="/q/MatMul"),
        c("MatMul", ["h", "wk"], ["k"], name="/k/MatMul"),
        c("MatMul", ["h", "wv"], ["v"], name="/v/MatMul"),
        c("Transpose", ["k"], ["kt"], name="/kT", perm=[0, 2, 1]),
        c("MatMul", ["q", "kt"], ["s"], name="/scores/MatMul"),
        c("Div", ["s", "scale"], ["s2"], name="/scores/Div"),
        c("Constant", [], ["mask"], name="/mask", value=numpy_helper.from_array(
            np.where(np.arange(LENGTH) >= LENGTH - 2, -1e4, 0.0).astype(np.float32).reshape(1, 1, LENGTH), "m")),
        c("Add", ["s2", "mask"], ["s3"], name="/mask/Add"),
        c("Where", ["causal", "s3", "floor"], ["s4"], name="/causal/Where"),
        c("Softmax", ["s4"], ["p"], name="/Softmax", axis=-1),
        c("MatMul", ["p", "v"], ["a"], name="/context/MatMul"),
        c("Add", ["a", "h"], ["r"], name="/residual/Add"),
        c("MatMul", ["r", "w1"], ["f0"], name="/ff1/MatMul"),
        c("Add", ["f0", "b1"], ["f"], name="/ff1/Add"),
        c("Div", ["f", "sqrt2"], ["fd"], name="/gelu/Div"),
        c("Erf", ["fd"], ["fe"], name="/gelu/Erf"),
        c("Add", ["fe", "one"], ["fa"], name="/gelu/Add"),
        *gelu,
        c("MatMul", ["g", "w2"], ["o"], name="/ff2/MatMul"),
        c("Pow", ["o", "three"], ["o3"], name="/Pow3"),
        c("Mul", ["o3", "tenth"], ["o3s"], name="/cube/Mul"),
        c("Add", ["o", "o3s"], ["y"], name="/out/Add"),
        c("Pow", ["o", "two"], ["o2"], name="/Pow2"),
        c("ReduceMean", ["o2"], ["ms"], name="/ReduceMean", axes=[-1], keepdims=1),
        c("Add", ["ms", "one_eps"], ["ms1"], name="/eps/Add"),
        c("Sqrt", ["ms1"], ["rms"], name="/Sqrt"),
        c("Reciprocal", ["rms"], ["inv"], name="/Reciprocal"),
    ]
    scalar = lambda v: np.array(v, np.float32)  # noqa: E731
    inits = [_init("embeddings.word.weight", _f(rng, VOCAB, HIDDEN, scale=1.0)),
             _init("embeddings.position.weight", _f(rng, LENGTH + 2, HIDDEN, scale=0.3)),
             _init("positions", np.arange(LENGTH, dtype=np.int64)),
             _init("ln.weight", 1 + _f(rng, HIDDEN, scale=0.1)), _init("ln.bias", _f(rng, HIDDEN, scale=0.1)),
             _init("wq", _f(rng, HIDDEN, HIDDEN)), _init("wk", _f(rng, HIDDEN, HIDDEN)),
             _init("wv", _f(rng, HIDDEN, HIDDEN)), _init("scale", scalar(np.sqrt(HIDDEN))),
             _init("causal", np.tril(np.ones((LENGTH, LENGTH), bool))), _init("floor", scalar(-1e4)),
             _init("w1", _f(rng, HIDDEN, 2 * HIDDEN)), _init("b1", _f(rng, 2 * HIDDEN, scale=0.1)),
             _init("sqrt2", scalar(1.4142135)), _init("one", scalar(1.0)), _init("half", scalar(0.5)),
             _init("w2", _f(rng, 2 * HIDDEN, HIDDEN, scale=0.3)), _init("three", scalar(3.0)),
             _init("tenth", scalar(0.1)), _init("two", scalar(2.0)), _init("one_eps", scalar(1.0))]
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, [1, LENGTH])
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, LENGTH, HIDDEN]),
            helper.make_tensor_value_info("inv", TensorProto.FLOAT, [1, LENGTH, 1])]
    return _model(nodes, [ids], outs, inits, "TinyEncoder")


def token_ids(seed):
    return np.random.default_rng(seed).integers(0, VOCAB, size=(1, LENGTH)).astype(np.int64)


@pytest.mark.parametrize("gelu_order", ["x_first", "half_first"])
def test_tiny_encoder_plaintext_matches_the_reference_evaluator(gelu_order):
    model = tiny_encoder(1, gelu_order)
    ours = nn.from_onnx(model)
    labels = [s.label for s in ours.steps]
    assert {"embedding", "layer_norm", "softmax", "where", "gelu", "pow", "sqrt", "reciprocal"} <= set(labels)
    assert labels.count("embedding") == 2 and labels.count("gelu") == 1
    assert labels.count("div") == 1 and labels.count("mul") == 1  # the GELU pattern is one step
    assert (ours.inputs[0].shape, ours.inputs[0].dtype, ours.inputs[0].vocabulary) == ((1, LENGTH), "int64", VOCAB)
    assert {"embeddings.word.weight", "ln.weight", "ln.bias", "wq", "w1", "b1"} <= set(ours.state_dict())
    assert not {"sqrt2", "half"} & set(ours.state_dict())  # the GELU's constants are not parameters
    for seed in (0, 1, 2):
        ids = token_ids(seed)
        want = ReferenceEvaluator(model).run(None, {"ids": ids})
        for got, expected in zip(as_list(ours(ids)), want, strict=True):
            assert got.dtype == np.float64
            assert_relative(got, expected, 1e-5)


def _encoder_program(owner, other, ids, party):
    shared_model = (owner if party.rank == 0 else other).share(party, src=0)
    shared_ids = nn.share_tokens(party, ids if party.rank == 1 else None, 1, VOCAB)
    return [out.reveal(to=1) for out in as_list(shared_model(shared_ids))]


@pytest.mark.parametrize("protocol,parties", SETTINGS)
def test_tiny_encoder_private(protocol, parties):
    model = tiny_encoder(1)
    owner, other = nn.from_onnx(model), nn.from_onnx(tiny_encoder(2))  # only party 0's weights may count
    ids = token_ids(3)
    results = smpc.run(functools.partial(_encoder_program, owner, other, ids), parties=parties, protocol=protocol,
                       timeout=300)
    assert results[0] == [None, None]
    for got, want in zip(results[1], ReferenceEvaluator(model).run(None, {"ids": ids}), strict=True):
        assert_relative(got, want, 2e-2)


def test_gelu_node_and_pow_forms():
    c = helper.make_node
    nodes = [c("Gelu", ["x"], ["g"], name="gelu"), c("Gelu", ["x"], ["t"], name="gelu_tanh", approximate="tanh"),
             c("Add", ["g", "t"], ["s"], name="add"), c("Pow", ["s", "p"], ["y"], name="pow")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])
    model = _model(nodes, [x], [y], [_init("p", np.array(2.0, np.float32))], opset=20)
    ours = nn.from_onnx(model)
    data = image((2, 5), 4)
    assert_relative(ours(data), ReferenceEvaluator(model).run(None, {"x": data})[0], 1e-5)
    nodes[-1] = c("Pow", ["s", "p"], ["y"], name="pow")
    with pytest.raises(nn.UnsupportedModelError, match=r"Pow \(exponent 1.5 .*\): 1x at pow"):
        nn.from_onnx(_model(nodes, [x], [y], [_init("p", np.array(1.5, np.float32))], opset=20))


def test_erf_outside_the_gelu_pattern_is_unsupported():
    """An Erf whose GELU pattern is broken (its 1 + erf also read elsewhere, or a wrong scale) stays unsupported."""
    c = helper.make_node
    inits = [_init("sqrt2", np.array(1.4142135, np.float32)), _init("one", np.array(1.0, np.float32)),
             _init("half", np.array(0.5, np.float32)), _init("three", np.array(3.0, np.float32))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])
    shared = [c("Div", ["x", "sqrt2"], ["d"], name="div"), c("Erf", ["d"], ["e"], name="erf_shared"),
              c("Add", ["e", "one"], ["a"], name="add"), c("Mul", ["x", "a"], ["m"], name="mul"),
              c("Mul", ["m", "half"], ["g"], name="mul_half"), c("Add", ["g", "a"], ["y"], name="reuse")]
    scaled = [c("Div", ["x", "three"], ["d"], name="div"), c("Erf", ["d"], ["e"], name="erf_scaled"),
              c("Add", ["e", "one"], ["a"], name="add"), c("Mul", ["x", "a"], ["m"], name="mul"),
              c("Mul", ["m", "half"], ["y"], name="mul_half")]
    for nodes, where in ((shared, "erf_shared"), (scaled, "erf_scaled")):
        with pytest.raises(nn.UnsupportedModelError) as caught:
            nn.from_onnx(_model(nodes, [x], [y], inits))
        assert caught.value.unsupported == {"Erf": [where]}


# --- refusals -------------------------------------------------------------------------------------------------------
def test_unsupported_ops_are_all_listed_before_anything_runs():
    c = helper.make_node
    nodes = [c("Erf", ["x"], ["e1"], name="erf_a"), c("Relu", ["e1"], ["r"], name="relu"),
             c("Erf", ["r"], ["e2"], name="erf_b"), c("Atan", ["e2"], ["a"], name="atan"),
             c("Conv", ["a", "w"], ["y"], name="conv3d")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4, 4])
    model = _model(nodes, [x], [y], [_init("w", np.ones((2, 2, 1, 1, 1), np.float32))])
    with pytest.raises(nn.UnsupportedModelError) as caught:
        nn.from_onnx(model)
    message = str(caught.value)
    assert "3 unsupported operation(s) of 2 kind(s)" in message
    assert "Erf: 2x at erf_a, erf_b" in message and "Atan: 1x at atan" in message
    assert caught.value.unsupported == {"Erf": ["erf_a", "erf_b"], "Atan": ["atan"]}
    # a supported op in an unsupported form is named with its reason
    nodes = [c("Conv", ["x", "w"], ["y"], name="conv3d")]
    with pytest.raises(nn.UnsupportedModelError, match=r"Conv \(3-D convolution \(2-D only\)\): 1x at conv3d"):
        nn.from_onnx(_model(nodes, [x], [y], [_init("w", np.ones((2, 2, 1, 1, 1), np.float32))]))


def test_missing_file_and_not_an_onnx_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        nn.from_onnx(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\xffthis is not a protobuf\x12\x99" * 10)
    with pytest.raises(ValueError, match="not an ONNX model"):
        nn.from_onnx(junk)
    text = tmp_path / "notes.onnx"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not .*ONNX model"):
        nn.from_onnx(text)
    with pytest.raises(TypeError, match="path, bytes or an onnx.ModelProto"):
        nn.from_onnx(42)


def test_importing_smpc_never_imports_onnx():
    code = "import sys, smpc, smpc.nn, smpc.nn.importers; print('onnx' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "False"


def test_from_onnx_without_onnx_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r'pip install "smpc-numpy\[onnx\]"'):
        nn.from_onnx("model.onnx")
