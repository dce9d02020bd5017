"""vizcli.text_models.bert_config: which configs vizcli's own BERT computes, and checkpoint key prefixes."""

import pytest

from vizcli.text_models.bert_config import strip_prefix, supports_natively


@pytest.mark.parametrize("config, native", [
    ({"model_type": "bert"}, True), ({"model_type": "bert", "hidden_act": "gelu_new"}, True),
    ({"model_type": "roberta"}, False), ({"model_type": "bert", "position_embedding_type": "relative_key"}, False),
    ({"model_type": "bert", "hidden_act": "mish"}, False), ({"model_type": "bert", "is_decoder": True}, False),
])
def test_supports_natively(config, native):
    assert supports_natively(config) is native


def test_strip_prefix_drops_a_shared_prefix_and_the_heads_only():
    assert strip_prefix({"bert.a": 1, "bert.b": 2, "cls.head": 3}) == {"a": 1, "b": 2}
    assert strip_prefix({"a": 1, "bert.b": 2}) == {"a": 1, "bert.b": 2}  # not every key: left alone
    assert strip_prefix({"roberta.a": 1}, ("roberta.",)) == {"a": 1}
