"""The official `openai` Python SDK against a running `moat serve`.

Run by `crates/gateway/tests/sdk.rs`, which starts the mock upstream and the gateway on real
sockets and passes their addresses in the environment; that test then checks what reached the
upstream (restored reasoning) and the store. Each check here is a function; the script exits
non-zero with the failing check's name and reason.

Environment: MOAT_BASE_URL (the gateway's /v1 URL), MOAT_KEY (a known API key),
MOAT_KEY_THROTTLED (a key whose account the policy throttles to one request a minute).
"""

import json
import os

import openai

from checks import check, run
from openai import OpenAI

BASE = os.environ["MOAT_BASE_URL"]
KEY = os.environ["MOAT_KEY"]
KEY_THROTTLED = os.environ["MOAT_KEY_THROTTLED"]
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
REASONING = "Let me think step by step"

client = OpenAI(base_url=BASE, api_key=KEY, max_retries=0, timeout=20)


@check
def models_are_listed():
    ids = [m.id for m in client.models.list()]
    assert "mock-reasoning-content" in ids, ids


@check
def chat_answers():
    r = client.chat.completions.create(model="mock-plain", messages=QUESTION)
    assert r.choices[0].message.content.startswith("This is a mock reply"), r
    assert r.usage.completion_tokens > 0


@check
def chat_streams_chunk_by_chunk():
    stream = client.chat.completions.create(
        model="mock-plain", messages=QUESTION, stream=True,
        stream_options={"include_usage": True})
    deltas, usage = [], None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.content:
                deltas.append(c.delta.content)
    assert len(deltas) == 8, deltas
    assert "".join(deltas).startswith("This is a mock reply"), deltas
    assert usage is not None and usage.completion_tokens > 0


@check
def completions_answer():
    r = client.completions.create(model="mock-plain", prompt="Say hi")
    assert r.choices[0].text, r


@check
def withheld_reasoning_round_trips():
    # The policy withholds reasoning for models named mock-reasoning*.
    r = client.chat.completions.create(model="mock-reasoning-content", messages=QUESTION)
    msg = r.choices[0].message
    dumped = msg.model_dump(exclude_none=True)
    text = json.dumps(dumped)
    assert REASONING not in text, text
    details = dumped.get("reasoning_details")
    assert details and details[0]["data"].startswith("moatr1."), dumped
    # The client keeps the assistant turn as the SDK gave it and sends it back.
    follow = QUESTION + [dumped, {"role": "user", "content": "And the capital of Italy?"}]
    r2 = client.chat.completions.create(model="mock-reasoning-content", messages=follow)
    assert r2.choices[0].message.content


@check
def withheld_reasoning_in_streams():
    stream = client.chat.completions.create(
        model="mock-reasoning-content", messages=QUESTION, stream=True)
    seen, tokens, content = [], [], []
    for chunk in stream:
        for c in chunk.choices:
            d = c.delta.model_dump(exclude_none=True)
            seen.append(json.dumps(d))
            for detail in d.get("reasoning_details") or []:
                tokens.append(detail.get("data", ""))
            if c.delta.content:
                content.append(c.delta.content)
    assert not any(REASONING in s for s in seen), seen
    assert tokens and tokens[0].startswith("moatr1."), seen
    assert "".join(content).startswith("This is a mock reply"), content


@check
def responses_api_withholds_and_restores():
    r = client.responses.create(model="mock-reasoning", input="What is the capital of France?")
    items = [i.model_dump(exclude_none=True) for i in r.output]
    reasoning = [i for i in items if i["type"] == "reasoning"]
    assert reasoning and reasoning[0]["encrypted_content"].startswith("moatr1."), items
    assert REASONING not in json.dumps(items), items
    follow = [{"role": "user", "content": "What is the capital of France?"}] + items + [
        {"role": "user", "content": "And Italy?"}]
    r2 = client.responses.create(model="mock-reasoning", input=follow)
    assert r2.output_text, r2


@check
def responses_stream():
    events = list(client.responses.create(
        model="mock-plain", input="What is the capital of France?", stream=True))
    types = [e.type for e in events]
    assert types[-1] == "response.completed", types
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text.startswith("This is a mock reply"), text


@check
def wrong_key_is_an_authentication_error():
    bad = OpenAI(base_url=BASE, api_key="sk-not-a-key", max_retries=0)
    try:
        bad.chat.completions.create(model="mock-plain", messages=QUESTION)
    except openai.AuthenticationError as e:
        assert e.status_code == 401
        assert "sk-not-a-key" not in str(e)
    else:
        raise AssertionError("no error")


@check
def blocked_model_is_a_permission_error():
    try:
        client.chat.completions.create(model="forbidden-model", messages=QUESTION)
    except openai.PermissionDeniedError as e:
        assert "not available" in e.message, e.message
    else:
        raise AssertionError("no error")


@check
def throttle_is_a_rate_limit_error():
    throttled = OpenAI(base_url=BASE, api_key=KEY_THROTTLED, max_retries=0)
    throttled.chat.completions.create(model="mock-plain", messages=QUESTION)
    try:
        throttled.chat.completions.create(model="mock-plain", messages=QUESTION)
    except openai.RateLimitError as e:
        assert int(e.response.headers["retry-after"]) >= 1
    else:
        raise AssertionError("no error")


@check
def malformed_request_is_a_bad_request():
    try:
        client.chat.completions.create(model="mock-plain", messages=[{"role": "user", "content": 5}])
    except openai.BadRequestError as e:
        assert "messages[0].content" in e.message, e.message
    else:
        raise AssertionError("no error")


if __name__ == "__main__":
    run(f"openai {openai.__version__}")
