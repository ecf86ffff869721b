"""The torch adapters (Hugging Face and vLLM). Skipped when torch is not installed."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from moat_mark import GumbelProcessor, KgwProcessor, VllmLogitsProcessor  # noqa: E402
from moat_mark.processors import HfGumbelLogitsProcessor, HfKgwLogitsProcessor  # noqa: E402

KEY = bytes(range(7, 39))
VOCAB = 257


def _batch(dtype: "torch.dtype"):
    gen = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, VOCAB, (3, 6), generator=gen)
    scores = torch.randn(3, VOCAB, generator=gen).to(dtype)
    return input_ids, scores


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_hf_kgw_matches_numpy_core_per_row(dtype: "torch.dtype") -> None:
    input_ids, scores = _batch(dtype)
    proc = HfKgwLogitsProcessor(KEY, gamma=0.25, delta=2.0, h=2)
    out = proc(input_ids, scores)
    assert out.dtype == scores.dtype and out.device == scores.device and out.shape == scores.shape
    core = KgwProcessor(KEY, gamma=0.25, delta=2.0, h=2)
    for b in range(3):
        want = core.apply(input_ids[b].tolist(), scores[b].double().numpy())
        assert np.allclose(out[b].double().numpy(), want, atol=0.02)
    green = core.green_mask(input_ids[0].tolist(), VOCAB)
    assert torch.equal(out[0][torch.from_numpy(~green)], scores[0][torch.from_numpy(~green)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_hf_gumbel_keeps_one_token_per_row(dtype: "torch.dtype") -> None:
    input_ids, scores = _batch(dtype)
    out = HfGumbelLogitsProcessor(KEY, h=1)(input_ids, scores)
    core = GumbelProcessor(KEY, h=1)
    for b in range(3):
        token = core.choose(input_ids[b].tolist(), scores[b].float().numpy())
        finite = torch.isfinite(out[b]).nonzero().flatten().tolist()
        assert finite == [token]
        assert out[b, token] == scores[b, token]
    assert int(out.argmax(dim=-1)[0]) == core.choose(
        input_ids[0].tolist(), scores[0].float().numpy()
    )


def test_hf_short_context_is_unchanged() -> None:
    input_ids, scores = _batch(torch.float32)
    out = HfKgwLogitsProcessor(KEY, gamma=0.25, delta=2.0, h=8)(input_ids, scores)
    assert torch.equal(out, scores)


def test_hf_base_class_when_transformers_present() -> None:
    try:
        import transformers
    except ImportError:
        pytest.skip("transformers is not installed")
    assert issubclass(HfKgwLogitsProcessor, transformers.LogitsProcessor)
    assert issubclass(HfGumbelLogitsProcessor, transformers.LogitsProcessor)


def test_vllm_forms_and_context() -> None:
    proc = VllmLogitsProcessor.kgw(KEY, gamma=0.25, delta=2.0, h=3)
    # vLLM passes the prompt when the callable takes three parameters.
    assert len(inspect.signature(proc).parameters) == 3
    logits = torch.randn(VOCAB)
    prompt, output = [5, 6, 7, 8], [9]
    three = proc(prompt, output, logits)
    core = KgwProcessor(KEY, gamma=0.25, delta=2.0, h=3)
    want = core.apply(prompt + output, logits.numpy())
    assert np.allclose(three.numpy(), want)
    # Two-argument form: the prompt comes from the constructor.
    two = VllmLogitsProcessor(core, prompt_token_ids=prompt)(output, logits)
    assert torch.equal(two, three)
    # Without a prompt, a short output leaves the row unchanged.
    assert VllmLogitsProcessor(core)([1], logits) is logits


def test_vllm_gumbel() -> None:
    proc = VllmLogitsProcessor.gumbel(KEY, h=2, temperature=0.8)
    logits = torch.randn(VOCAB, dtype=torch.float16)
    out = proc([1, 2, 3], [4], logits)
    token = GumbelProcessor(KEY, h=2, temperature=0.8).choose([3, 4], logits.float().numpy())
    assert out.dtype == torch.float16
    assert torch.isfinite(out).nonzero().flatten().tolist() == [token]


def _tiny_model():
    """A randomly initialised one-layer GPT-2 built from a config: no download needed."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=VOCAB, n_positions=256, n_embd=32, n_layer=1, n_head=2
    )
    return transformers.GPT2LMHeadModel(config).eval()


def test_hf_generate_end_to_end_is_detected() -> None:
    """`model.generate` with the processors yields text the detector finds under its key only."""
    from transformers import LogitsProcessorList

    from moat_mark import detect_gumbel, detect_kgw

    model = _tiny_model()
    prompt = torch.tensor([[1, 2, 3, 4]])
    kgw = LogitsProcessorList([HfKgwLogitsProcessor(KEY, gamma=0.25, delta=4.0, h=1)])
    with torch.no_grad():
        out = model.generate(
            prompt, do_sample=True, max_new_tokens=120, logits_processor=kgw,
            pad_token_id=0, top_k=0,
        )
    text = out[0, prompt.shape[1] - 1 :].tolist()  # the last prompt token is the first window
    own = detect_kgw(KEY, [text], gamma=0.25, h=1)
    other = detect_kgw(bytes(32), [text], gamma=0.25, h=1)
    assert own.log10_p < -10, own
    assert other.log10_p > -4, other

    gumbel = LogitsProcessorList([HfGumbelLogitsProcessor(KEY, h=1)])
    with torch.no_grad():
        out = model.generate(
            prompt, do_sample=True, max_new_tokens=120, logits_processor=gumbel,
            pad_token_id=0, top_k=0,
        )
    text = out[0, prompt.shape[1] - 1 :].tolist()
    own = detect_gumbel(KEY, [text], h=1)
    assert own.log10_p < -6, own


def test_reading_mode_predictions_feed_the_open_setting(tmp_path) -> None:
    """Predictions of a model on a text line up with the text, in windows too."""
    import json

    from moat_mark.reading import predictions, write_predictions

    model = _tiny_model()
    text = list(range(5, 45))
    whole = list(predictions(model, [text], max_len=1024))[0]
    windowed = list(predictions(model, [text], max_len=7))[0]
    assert whole["tokens"] == text and len(whole["predicted"]) == len(text)
    # The first prediction of every later window loses left context, so only the first
    # window's predictions must agree exactly.
    assert whole["predicted"][:7] == windowed["predicted"][:7]
    with torch.no_grad():
        logits = model(torch.tensor([text[:10]])).logits[0]
    assert whole["predicted"][10] == int(logits[9].argmax())
    path = tmp_path / "p.jsonl"
    assert write_predictions(str(path), [whole, windowed]) == 2
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[0] == whole
    with pytest.raises(ValueError, match="empty"):
        list(predictions(model, [[]]))
