"""kopf's settings as the operator applies them at startup (strategy_operator.handlers.configure)."""

from __future__ import annotations

import kopf

from strategy_operator.handlers import configure


def test_an_objects_watch_worker_lets_go_after_a_second_idle_not_five():
    """kopf keeps one worker per object while its events come; an idle one lingers for queueing.idle_timeout with
    its frames, queue and last body. With 5 s (kopf's default) about every object of a burst had one at the end of
    it (973 at N = 1000): a second is enough for events of one object, which come together."""
    settings = kopf.OperatorSettings()
    configure(settings)
    assert settings.queueing.idle_timeout == 1.0


def test_every_object_shares_the_operators_memo_rather_than_a_copy_each():
    """kopf gives each object it watches a shallow copy of the operator's memo (9,002 objects at N = 1000, 1.7 MiB):
    the handlers keep nothing per object in it, so one is shared by all."""
    import copy

    from strategy_operator.main import operator_kwargs
    from tests.support.operator import fast_settings

    memo = operator_kwargs(fast_settings())["memo"]
    assert copy.copy(memo) is memo
    assert isinstance(memo, kopf.Memo) and memo.settings is not None
