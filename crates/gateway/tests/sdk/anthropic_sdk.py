"""The official `anthropic` Python SDK against a running `moat serve`.

Run by `crates/gateway/tests/sockets.rs` like `openai_sdk.py`, with the same environment
(MOAT_BASE_URL without /v1 is derived from it). Thinking blocks are withheld by the policy for
models named mock-reasoning*: the client gets `redacted_thinking`, sends it back unchanged, and
the test on the Rust side checks the upstream received the original block with its signature.
"""

import json
import os

import anthropic

from checks import check, run

BASE = os.environ["MOAT_BASE_URL"].removesuffix("/v1")
KEY = os.environ["MOAT_KEY"]
REASONING = "Let me think step by step"
client = anthropic.Anthropic(base_url=BASE, api_key=KEY, max_retries=0, timeout=20)


@check
def messages_answer():
    m = client.messages.create(model="mock-plain", max_tokens=256,
                               messages=[{"role": "user", "content": "Hi"}])
    assert m.content[0].text.startswith("This is a mock reply"), m


@check
def thinking_is_withheld_and_round_trips():
    m = client.messages.create(model="mock-reasoning", max_tokens=1024,
                               messages=[{"role": "user", "content": "What is 2+2?"}])
    blocks = [b.model_dump(exclude_none=True) for b in m.content]
    assert blocks[0]["type"] == "redacted_thinking", blocks
    assert blocks[0]["data"].startswith("moatr1."), blocks
    assert REASONING not in json.dumps(blocks), blocks
    follow = [{"role": "user", "content": "What is 2+2?"},
              {"role": "assistant", "content": blocks},
              {"role": "user", "content": "And 3+3?"}]
    m2 = client.messages.create(model="mock-reasoning", max_tokens=1024, messages=follow)
    assert m2.content, m2


@check
def thinking_is_withheld_in_streams():
    with client.messages.stream(model="mock-reasoning", max_tokens=1024,
                                messages=[{"role": "user", "content": "What is 2+2?"}]) as s:
        events = [e.model_dump_json() for e in s]
        final = s.get_final_message()
    assert not any(REASONING in e for e in events), events
    kinds = [b.type for b in final.content]
    assert kinds[0] == "redacted_thinking" and "text" in kinds, kinds


@check
def bad_key_is_an_authentication_error():
    bad = anthropic.Anthropic(base_url=BASE, api_key="sk-ant-nope", max_retries=0)
    try:
        bad.messages.create(model="mock-plain", max_tokens=16,
                            messages=[{"role": "user", "content": "Hi"}])
    except anthropic.AuthenticationError as e:
        assert e.status_code == 401
    else:
        raise AssertionError("no error")


if __name__ == "__main__":
    run(f"anthropic {anthropic.__version__}")
