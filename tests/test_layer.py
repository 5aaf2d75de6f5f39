"""``NormalizeLayer``, the standard mode as an ``nn.Module``: parity with ``normalize``, half
output, state dict, device moves, and the same output through TorchScript, ``torch.compile``,
``torch.export`` and ONNX (onnxruntime).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_image

from norm_transforms import DenormalizeLayer, NormalizeLayer, denormalize, normalize

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
ATOL = 1e-6
HALF_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def uint8_batch(rng, shape=(2, 3, 20, 24)) -> torch.Tensor:
    return torch.from_numpy(make_image(rng, np.uint8, shape, "random"))


def float_batch(rng, shape=(2, 3, 20, 24)) -> torch.Tensor:
    return torch.from_numpy(make_image(rng, np.float32, shape, "random"))


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("shape", [(2, 3, 20, 24), (3, 20, 24)], ids=["NCHW", "CHW"])
def test_uint8_output_equals_normalize(rng, shape):
    image = uint8_batch(rng, shape)
    out = NormalizeLayer()(image)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, normalize(image, MEAN, STD, max_pixel_value=255.0), rtol=0, atol=ATOL)


def test_float_input_with_max_pixel_value_one_equals_normalize(rng):
    image = float_batch(rng)
    out = NormalizeLayer((0.5, 0.4, 0.3), (0.2, 0.3, 0.25), max_pixel_value=1.0)(image)
    expected = normalize(image, (0.5, 0.4, 0.3), (0.2, 0.3, 0.25), max_pixel_value=1.0)
    torch.testing.assert_close(out, expected, rtol=0, atol=ATOL)


def test_gradient_flows_to_the_input(rng):
    # normalize() refuses tensors that require grad and points here: the layer must be differentiable.
    image = float_batch(rng).requires_grad_()
    NormalizeLayer(MEAN, STD, max_pixel_value=1.0)(image).sum().backward()
    expected = (1.0 / torch.tensor(STD)).reshape(3, 1, 1).expand_as(image)
    torch.testing.assert_close(image.grad, expected, rtol=1e-6, atol=0)


def test_channels_last_input_gives_the_same_values(rng):
    image = uint8_batch(rng)
    layer = NormalizeLayer()
    out = layer(image.contiguous(memory_format=torch.channels_last))
    assert torch.equal(out, layer(image))


@pytest.mark.parametrize("name", HALF_DTYPES)
def test_half_output_is_the_float32_output_rounded(rng, name):
    image = uint8_batch(rng)
    out = NormalizeLayer(dtype=HALF_DTYPES[name])(image)
    assert out.dtype == HALF_DTYPES[name]
    assert torch.equal(out, NormalizeLayer()(image).to(HALF_DTYPES[name]))


# --------------------------------------------------------------------------- state


def test_state_dict_holds_exactly_mean_and_std():
    state = NormalizeLayer((0.1, 0.2, 0.3), (0.4, 0.5, 0.6)).state_dict()
    assert list(state) == ["mean", "std"]
    assert state["mean"].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert state["std"].tolist() == pytest.approx([0.4, 0.5, 0.6])


def test_loading_a_state_dict_refolds_the_constants(rng):
    image = uint8_batch(rng)
    other = NormalizeLayer((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    layer = NormalizeLayer()
    before = layer(image)
    layer.load_state_dict(other.state_dict())
    assert not torch.allclose(layer(image), before)
    assert torch.equal(layer(image), other(image))
    expected = normalize(image, (0.1, 0.2, 0.3), (0.4, 0.5, 0.6), max_pixel_value=255.0)
    torch.testing.assert_close(layer(image), expected, rtol=0, atol=ATOL)


def test_to_cpu_keeps_working(rng):
    image = uint8_batch(rng)
    layer = NormalizeLayer()
    expected = layer(image)
    assert layer.to("cpu") is layer
    assert torch.equal(layer(image), expected)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_to_cuda_gives_the_cpu_output(rng):
    image = uint8_batch(rng)
    expected = NormalizeLayer()(image)
    out = NormalizeLayer().to("cuda")(image.cuda())
    torch.testing.assert_close(out.cpu(), expected, rtol=0, atol=ATOL)


# --------------------------------------------------------------------------- compilers and export


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_gives_identical_output(rng):
    image = uint8_batch(rng)
    layer = NormalizeLayer()
    scripted = torch.jit.script(layer)
    assert torch.equal(scripted(image), layer(image))
    assert torch.equal(scripted(image[0]), layer(image[0]))


def test_torch_compile_fullgraph_matches_eager(rng):
    """Within half an ulp of ``x * scale`` (|x * scale| <= 4.5, ulp 4.8e-7), not bit for bit: eager
    ``addcmul`` on CPU rounds once (fused multiply-add), Inductor's generated loop multiplies, rounds,
    then adds."""
    image = uint8_batch(rng)
    layer = NormalizeLayer()
    compiled = torch.compile(layer, fullgraph=True)
    torch.testing.assert_close(compiled(image), layer(image), rtol=0, atol=ATOL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_torch_compile_sees_one_graph_without_breaks(rng, dtype):
    explanation = torch._dynamo.explain(NormalizeLayer(dtype=dtype))(uint8_batch(rng))
    assert (explanation.graph_count, explanation.graph_break_count) == (1, 0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graphs_under_torch_compile_give_the_eager_output(rng):
    # mode="reduce-overhead" replays the layer's kernel from a CUDA graph: no launch overhead.
    layer = NormalizeLayer(dtype=torch.float16).cuda()
    compiled = torch.compile(layer, mode="reduce-overhead", fullgraph=True)
    image = uint8_batch(rng).cuda()
    for _ in range(3):  # recorded on the second call, replayed from the third
        out = compiled(image).clone()
    torch.testing.assert_close(out, layer(image), rtol=0, atol=1e-3)


def test_torch_export_module_gives_identical_output(rng):
    image = uint8_batch(rng)
    layer = NormalizeLayer(dtype=torch.float16)
    exported = torch.export.export(layer, (image,))
    assert torch.equal(exported.module()(image), layer(image))


def test_onnx_export_runs_in_onnxruntime(rng, tmp_path):
    pytest.importorskip("onnxscript")
    onnxruntime = pytest.importorskip("onnxruntime")
    image = uint8_batch(rng)
    layer = NormalizeLayer().eval()
    path = tmp_path / "normalize.onnx"
    torch.onnx.export(layer, (image,), path, dynamo=True)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: image.numpy()})
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, layer(image).numpy(), rtol=0, atol=ATOL)


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"dtype": torch.int8}, TypeError, r"dtype must be one of .*; got torch\.int8"),
        ({"dtype": torch.complex64}, TypeError, r"dtype must be one of .*; got torch\.complex64"),
        ({"max_pixel_value": None}, ValueError, r"max_pixel_value must be a number for NormalizeLayer"),
        ({"max_pixel_value": 0.0}, ValueError, r"max_pixel_value must be a positive finite number"),
        ({"std": 0}, ValueError, r"std must contain only positive numbers"),
        ({"mean": (0.1, 0.2), "std": STD}, ValueError, r"mean has 2 values and std 3"),
    ],
    ids=["int8", "complex64", "max_pixel_value_none", "max_pixel_value_zero", "std_zero", "mean_length"],
)
def test_bad_arguments_raise_clearly(kwargs, error, message):
    with pytest.raises(error, match=message):
        NormalizeLayer(**kwargs)


def test_repr_shows_the_arguments():
    text = repr(NormalizeLayer(0.5, 0.25, max_pixel_value=1.0, dtype=torch.float16, clip_range=(0, 1)))
    parts = ("mean=[0.5]", "std=[0.25]", "max_pixel_value=1.0", "dtype=torch.float16")
    parts += ("clip_range=(0.0, 1.0)",)
    for part in parts:
        assert part in text


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_clip_range_clips_eagerly_scripted_compiled_and_exported(rng):
    image = uint8_batch(rng)
    layer = NormalizeLayer(clip_range=(-1.0, 1.5))
    out = layer(image)
    expected = normalize(image, max_pixel_value=255.0, clip_range=(-1.0, 1.5))
    torch.testing.assert_close(out, expected, rtol=0, atol=ATOL)
    assert out.min() == -1.0 and out.max() == 1.5
    assert torch.equal(torch.jit.script(layer)(image), out)
    torch.testing.assert_close(torch.compile(layer, fullgraph=True)(image), out, rtol=0, atol=ATOL)
    assert torch.equal(torch.export.export(layer, (image,)).module()(image), out)


@pytest.mark.parametrize(
    "shape", [(2, 1, 8, 8), (1, 8, 8), (2, 4, 8, 8), (8, 8)], ids=["N1HW", "1HW", "N4HW", "HW"]
)
def test_channel_count_other_than_the_constants_is_refused_not_broadcast(shape):
    # addcmul would broadcast (2, 1, H, W) or (H, W) to 3 channels without a word.
    with pytest.raises(ValueError, match=r"expects \(N, C, H, W\) or \(C, H, W\) input with C = 3"):
        NormalizeLayer()(torch.zeros(shape))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_scripted_layer_refuses_a_wrong_channel_count_too():
    scripted = torch.jit.script(NormalizeLayer())
    with pytest.raises(Exception, match=r"input with C = 3"):
        scripted(torch.zeros(2, 1, 8, 8))


def test_one_value_constants_apply_to_any_channel_count(rng):
    image = uint8_batch(rng, (2, 5, 6, 7))
    out = NormalizeLayer(0.5, 0.25)(image)
    torch.testing.assert_close(out, normalize(image, 0.5, 0.25, max_pixel_value=255.0), rtol=0, atol=ATOL)


# --------------------------------------------------------------------------- the inverse


@pytest.mark.parametrize("preset", ["imagenet", "clip"])
def test_inverse_gives_the_pixels_back(rng, preset):
    image = uint8_batch(rng)
    layer = NormalizeLayer.from_preset(preset)
    back = layer.inverse()(layer(image))
    assert back.dtype == torch.float32
    # float32 both ways: within 2e-6 of full scale (255), as denormalize promises.
    torch.testing.assert_close(back, image.float(), rtol=0, atol=2e-6 * 255)
    assert torch.equal(back.round().to(torch.uint8), image)


def test_denormalize_layer_equals_functional_denormalize(rng):
    y = normalize(uint8_batch(rng), max_pixel_value=255.0)
    layer = DenormalizeLayer.from_preset("imagenet")
    torch.testing.assert_close(layer(y), denormalize(y), rtol=0, atol=1e-4)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_denormalize_layer_scripts_compiles_exports_and_loads_a_state_dict(rng):
    y = NormalizeLayer()(uint8_batch(rng))
    layer = DenormalizeLayer(mean=(0.1, 0.2, 0.3), std=(0.3, 0.2, 0.1))
    out = layer(y)
    assert torch.equal(torch.jit.script(layer)(y), out)
    torch.testing.assert_close(torch.compile(layer, fullgraph=True)(y), out, rtol=0, atol=1e-4)
    assert torch.equal(torch.export.export(layer, (y,)).module()(y), out)
    restored = DenormalizeLayer()
    restored.load_state_dict(layer.state_dict())
    assert torch.equal(restored(y), out)
    message = r"DenormalizeLayer expects \(N, C, H, W\) or \(C, H, W\) input with C = 3"
    with pytest.raises(ValueError, match=message):
        layer(y[:, :1])


def test_denormalize_transforms_take_presets():
    from norm_transforms import Denormalize, TorchDenormalize

    for transform in (Denormalize.from_preset("clip"), TorchDenormalize.from_preset("clip")):
        assert tuple(transform.mean) == pytest.approx((0.48145466, 0.4578275, 0.40821073))


# --------------------------------------------------------------------------- learnable=True
#
# mean and log_std are float32 parameters (std = exp(log_std)); each forward computes the
# addcmul's scale and offset from them.

PRESET_NAMES = ["imagenet", "clip", "inception", "yolo", "dpn", "caffe", "detectron2"]


def learnable_layer(**kwargs) -> NormalizeLayer:
    return NormalizeLayer((0.45, 0.5, 0.4), (0.25, 0.2, 0.3), learnable=True, **kwargs)


def reference_gradients(layer, image, weights):
    """d(sum(weights * y))/d(mean, log_std) of ``(x - mean * mpv) / (exp(log_std) * mpv)``, all in
    float64, from the layer's current parameter values."""
    mean = layer.mean.detach().double().requires_grad_()
    log_std = layer.log_std.detach().double().requires_grad_()
    shape, mpv = (-1, 1, 1), layer.max_pixel_value
    y = (image.double() - mean.reshape(shape) * mpv) / (log_std.exp().reshape(shape) * mpv)
    return torch.autograd.grad((weights.double() * y).sum(), (mean, log_std))


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_learnable_layer_starts_at_the_frozen_output(rng, preset):
    """Within 1.25 float32 steps of the larger addcmul term (bounded here by 2): float32 mean and
    log_std, and scale and offset computed from them in float32, in place of float64 constants
    rounded once. Measured max differences: 0 for imagenet, inception and yolo (the same bits),
    4.8e-7 for clip and dpn (|y| <= 2.6), 1.5e-5 for caffe and detectron2 (|y| <= 152): one
    float32 step of the output."""
    image = uint8_batch(rng)
    frozen, learnable = NormalizeLayer.from_preset(preset), NormalizeLayer.from_preset(preset, learnable=True)
    out, expected = learnable(image), frozen(image)
    assert out.dtype == torch.float32 and out.requires_grad
    larger_term = torch.maximum(image * frozen.scale.abs(), frozen.offset.abs())
    assert ((out - expected).abs() <= 2 * torch.finfo(torch.float32).eps * larger_term).all()
    assert learnable.mean.tolist() == frozen.mean.float().tolist()
    torch.testing.assert_close(learnable.std, frozen.std.float(), rtol=2e-7, atol=0)


def test_learnable_layer_holds_mean_and_log_std_as_float32_parameters():
    layer = learnable_layer()
    assert [name for name, _ in layer.named_parameters()] == ["mean", "log_std"]
    assert list(layer.state_dict()) == ["mean", "log_std"]
    assert layer.mean.dtype == layer.log_std.dtype == torch.float32
    assert list(layer.buffers()) == []  # no folded constants: the forward computes them
    assert layer.std.requires_grad
    torch.testing.assert_close(layer.std, torch.tensor([0.25, 0.2, 0.3]), rtol=2e-7, atol=0)
    # The default is untouched: buffers, no parameters.
    assert list(NormalizeLayer().parameters()) == []


@pytest.mark.parametrize("make", [uint8_batch, float_batch], ids=["uint8", "float32"])
def test_learnable_gradients_equal_the_float64_reference(rng, make):
    image = make(rng)
    mpv = 255.0 if image.dtype == torch.uint8 else 1.0
    layer = learnable_layer(max_pixel_value=mpv)
    weights = torch.from_numpy(rng.standard_normal(image.shape).astype(np.float32))
    (weights * layer(image)).sum().backward()
    mean_grad, log_std_grad = reference_gradients(layer, image, weights)
    # float32 sums of 960 signed products per channel against float64 ones: measured up to 6.5e-6
    # relative where they cancel (seeds 0-4); a wrong derivative is off by far more.
    torch.testing.assert_close(layer.mean.grad, mean_grad.float(), rtol=1e-4, atol=0)
    torch.testing.assert_close(layer.log_std.grad, log_std_grad.float(), rtol=1e-4, atol=0)


def test_learnable_layer_passes_gradcheck_in_float64(rng):
    layer = NormalizeLayer(MEAN, STD, max_pixel_value=2.0, dtype=torch.float64, learnable=True)
    image = torch.from_numpy(rng.random((2, 3, 4, 5))).requires_grad_()
    mean = layer.mean.detach().double().requires_grad_()
    log_std = layer.log_std.detach().double().requires_grad_()

    def call(mean, log_std, image):
        return torch.func.functional_call(layer, {"mean": mean, "log_std": log_std}, (image,))

    assert torch.autograd.gradcheck(call, (mean, log_std, image))
    assert torch.autograd.gradgradcheck(call, (mean, log_std, image))


def test_learnable_uint8_input_gives_gradients_only_to_the_parameters(rng):
    image = uint8_batch(rng)
    layer = learnable_layer(dtype=torch.float16)
    out = layer(image)
    assert out.dtype == torch.float16
    out.float().sum().backward()
    assert not image.requires_grad and image.grad is None
    assert layer.mean.grad is not None and layer.log_std.grad is not None
    reference = learnable_layer()
    reference(image.float()).sum().backward()  # the same pixels as float32
    torch.testing.assert_close(layer.mean.grad, reference.mean.grad, rtol=1e-5, atol=0)
    torch.testing.assert_close(layer.log_std.grad, reference.log_std.grad, rtol=1e-5, atol=0)


def test_an_optimizer_step_moves_mean_and_std(rng):
    image = uint8_batch(rng)
    layer = NormalizeLayer.from_preset("imagenet", learnable=True)
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-2)
    mean, std = layer.mean.detach().clone(), layer.std.detach().clone()
    for _ in range(3):  # pull the output towards zero mean and unit variance per channel
        optimizer.zero_grad()
        y = layer(image)
        loss = y.mean(dim=(0, 2, 3)).square().sum() + (y.var(dim=(0, 2, 3)) - 1).square().sum()
        loss.backward()
        optimizer.step()
    assert (layer.mean != mean).all() and (layer.std != std).all()
    torch.testing.assert_close(layer(image), NormalizeLayer(layer.mean.tolist(), layer.std.tolist())(image))


def test_std_stays_positive_after_a_huge_step(rng):
    """A step that would take a plain std parameter to -30 (a hundred times its size, the wrong
    way) divides std by ~1e4 instead: std = exp(log_std), and d loss/d log_std = std * d loss/d
    std. (float32 exp stays positive down to log_std = -103, a std 1e-45 of full scale.)"""
    image = uint8_batch(rng)
    layer = learnable_layer()
    std, lr = layer.std.detach().clone(), 10.0
    (-layer(image).square().mean()).backward()  # grows as std shrinks: pushes std down
    std_gradient = layer.log_std.grad / std
    assert (std - lr * std_gradient < -20).all()  # where a plain std would land
    torch.optim.SGD(layer.parameters(), lr=lr).step()
    assert (layer.std > 0).all() and (layer.std < std * 1e-3).all()
    assert torch.isfinite(layer(image)).all()


def test_learnable_layer_starts_from_channel_stats(rng):
    from norm_transforms import ChannelStats

    images = make_image(rng, np.uint8, (4, 20, 24, 3), "random")
    kwargs = ChannelStats().update(images).to_normalize_kwargs()
    layer = NormalizeLayer(**kwargs, learnable=True)
    torch.testing.assert_close(layer.mean, torch.tensor(kwargs["mean"], dtype=torch.float32))
    torch.testing.assert_close(layer.std, torch.tensor(kwargs["std"], dtype=torch.float32), rtol=2e-7, atol=0)
    batch = torch.from_numpy(images).permute(0, 3, 1, 2)
    torch.testing.assert_close(layer(batch), NormalizeLayer(**kwargs)(batch), rtol=0, atol=ATOL)


@pytest.mark.parametrize(
    "value", ["yes", 1, 0, None, np.bool_(True)], ids=["str", "one", "zero", "None", "numpy_bool"]
)
def test_learnable_must_be_a_bool(value):
    with pytest.raises(TypeError, match=r"learnable must be True or False, got "):
        NormalizeLayer(learnable=value)


def test_repr_shows_learnable():
    assert "learnable" not in repr(NormalizeLayer())
    text = repr(NormalizeLayer.from_preset("imagenet", learnable=True))
    # float32 values as the shortest decimals that give them back.
    assert "mean=[0.485, 0.456, 0.406]" in text and text.endswith("learnable=True)")


def test_assigning_std_of_a_learnable_layer_says_to_set_log_std():
    layer = learnable_layer()
    with pytest.raises(AttributeError, match=r"exp\(log_std\); set log_std instead"):
        layer.std = torch.ones(3)


# ---- state dict: mean and log_std, and checkpoints of either kind load into both


def test_learnable_state_dict_round_trips_through_a_file(rng, tmp_path):
    image = uint8_batch(rng)
    layer = learnable_layer()
    with torch.no_grad():
        layer.mean.add_(0.01)
        layer.log_std.sub_(0.1)
    torch.save(layer.state_dict(), tmp_path / "layer.pt")
    restored = NormalizeLayer(learnable=True)
    restored.load_state_dict(torch.load(tmp_path / "layer.pt"))
    assert torch.equal(restored.mean, layer.mean) and torch.equal(restored.log_std, layer.log_std)
    assert torch.equal(restored(image), layer(image))


def test_a_frozen_checkpoint_loads_into_a_learnable_layer_and_back(rng):
    image = uint8_batch(rng)
    frozen = NormalizeLayer((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    state = frozen.state_dict()
    learnable = NormalizeLayer(learnable=True)
    learnable.load_state_dict(state)  # std -> log_std
    assert list(state) == ["mean", "std"]  # the caller's dict is left as it was
    torch.testing.assert_close(learnable.std, frozen.std.float(), rtol=2e-7, atol=0)
    torch.testing.assert_close(learnable(image), frozen(image), rtol=0, atol=ATOL)
    # A trained layer deployed frozen: log_std -> std, folded again into the one addcmul.
    with torch.no_grad():
        learnable.log_std.add_(0.05)
    deployed = NormalizeLayer()
    deployed.load_state_dict(learnable.state_dict())
    assert list(deployed.state_dict()) == ["mean", "std"]
    torch.testing.assert_close(deployed(image), learnable(image), rtol=0, atol=ATOL)
    # The inverse takes it too.
    inverse = DenormalizeLayer()
    inverse.load_state_dict(learnable.state_dict())
    torch.testing.assert_close(inverse(learnable(image)), image.float(), rtol=0, atol=2e-6 * 255)


def test_learnable_layer_follows_a_device_move(rng):
    image = uint8_batch(rng)
    layer = learnable_layer()
    expected = layer(image)
    assert layer.to("cpu") is layer and isinstance(layer.mean, torch.nn.Parameter)
    assert torch.equal(layer(image), expected)


# ---- the inverse: a frozen snapshot


def test_inverse_of_a_learnable_layer_is_a_frozen_snapshot(rng):
    """A DenormalizeLayer of the current values with buffers, not the same parameters: a loss on
    what it gives back does not train the normalization, and it can be used after training
    without a gradient path into the model. Call inverse() again for new values."""
    image = uint8_batch(rng)
    layer = NormalizeLayer.from_preset("clip", learnable=True)
    with torch.no_grad():
        layer.mean.add_(0.02)
        layer.log_std.add_(0.1)
    inverse = layer.inverse()
    assert isinstance(inverse, DenormalizeLayer) and list(inverse.parameters()) == []
    assert "learnable" not in repr(inverse)
    back = inverse(layer(image).detach())
    torch.testing.assert_close(back, image.float(), rtol=0, atol=2e-6 * 255)
    assert torch.equal(back.round().to(torch.uint8), image)
    snapshot = inverse.state_dict()
    with torch.no_grad():
        layer.mean.add_(0.1)
    assert torch.equal(inverse.mean, snapshot["mean"])  # not tied to the parameters
    assert not torch.equal(layer.inverse().mean, snapshot["mean"])


# ---- compilers and export


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_learnable_layer_scripts_with_gradients(rng):
    image = uint8_batch(rng)
    layer = learnable_layer(clip_range=(-1.0, 1.5))
    scripted = torch.jit.script(layer)
    out = scripted(image)
    assert torch.equal(out, layer(image))
    out.sum().backward()
    grads = layer.mean.grad.clone(), layer.log_std.grad.clone()  # scripted shares the parameters
    layer.zero_grad()
    layer(image).sum().backward()
    assert torch.equal(grads[0], layer.mean.grad) and torch.equal(grads[1], layer.log_std.grad)
    with pytest.raises(Exception, match=r"input with C = 3"):
        scripted(torch.zeros(2, 1, 8, 8))


def test_learnable_layer_compiles_forward_and_backward(rng):
    """Inductor, fullgraph, forward and backward (AOTAutograd) against eager: within one rounding
    (Inductor multiplies then adds where eager addcmul fuses)."""
    image = uint8_batch(rng)
    layer = learnable_layer()
    compiled = torch.compile(layer, fullgraph=True)
    out = compiled(image)
    torch.testing.assert_close(out, layer(image), rtol=0, atol=ATOL)
    out.sum().backward()
    grads = layer.mean.grad.clone(), layer.log_std.grad.clone()
    layer.zero_grad()
    layer(image).sum().backward()
    torch.testing.assert_close(grads, (layer.mean.grad, layer.log_std.grad), rtol=1e-5, atol=0)


def test_learnable_layer_is_one_graph_without_breaks(rng):
    explanation = torch._dynamo.explain(learnable_layer())(uint8_batch(rng))
    assert (explanation.graph_count, explanation.graph_break_count) == (1, 0)


def test_learnable_layer_exports(rng):
    image = uint8_batch(rng)
    layer = learnable_layer(dtype=torch.float16)
    exported = torch.export.export(layer, (image,))
    assert list(exported.state_dict) == ["mean", "log_std"]
    assert torch.equal(exported.module()(image), layer(image))


def test_learnable_layer_onnx_export_runs_in_onnxruntime(rng, tmp_path):
    pytest.importorskip("onnxscript")
    onnxruntime = pytest.importorskip("onnxruntime")
    image = uint8_batch(rng)
    layer = NormalizeLayer.from_preset("clip", learnable=True).eval()
    path = tmp_path / "learnable.onnx"
    torch.onnx.export(layer, (image,), path, dynamo=True)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: image.numpy()})
    np.testing.assert_allclose(out, layer(image).detach().numpy(), rtol=0, atol=ATOL)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_learnable_layer_on_cuda_gives_the_cpu_output_and_gradients(rng):
    image = uint8_batch(rng)
    layer, on_cuda = learnable_layer(), learnable_layer().cuda()
    out, cuda_out = layer(image), on_cuda(image.cuda())
    torch.testing.assert_close(cuda_out.cpu(), out, rtol=0, atol=ATOL)
    out.sum().backward()
    cuda_out.sum().backward()
    torch.testing.assert_close(on_cuda.mean.grad.cpu(), layer.mean.grad, rtol=1e-5, atol=0)
    torch.testing.assert_close(on_cuda.log_std.grad.cpu(), layer.log_std.grad, rtol=1e-5, atol=0)
