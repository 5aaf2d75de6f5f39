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
