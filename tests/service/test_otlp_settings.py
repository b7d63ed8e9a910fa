"""The OTLP price table setting: JSON in the environment, validated like every setting."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.runtime.settings import Settings


def test_prices_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTD_OTLP_PRICES", '{"gpt-4o-mini": {"input": 0.15, "output": 0.6}}')
    assert Settings().otlp_prices == {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}


@pytest.mark.parametrize("price", [{"input": 0.15}, {"input": -1.0, "output": 0.6},
                                   {"input": 1.0, "output": 2.0, "cached": 0.5}])
def test_a_price_needs_non_negative_input_and_output(price: dict[str, float]) -> None:
    with pytest.raises(ValidationError, match="non-negative 'input' and 'output'"):
        Settings(otlp_prices={"m": price})
