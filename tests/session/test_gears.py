"""run_graph on a graph with gear options: one compilation for every gear, one execution path
(the loaded buffer of get_compiled_model has the same gears)."""

from __future__ import annotations

import numpy as np

from openge.runtime import Model
from openge.session import GeSession
from tests.runtime.test_gears import check, inputs_for, mlp_graph

OPTIONS = {"ge.inputShape": "x:-1,4;a:-1,2", "ge.dynamicBatchSize": "2,5"}


def test_run_graph_runs_every_gear_of_one_compilation(ge):
    with GeSession() as session:
        session.add_graph(1, mlp_graph(), OPTIONS)
        compiled = None
        for batch in (2, 5, 2):
            inputs = inputs_for(batch)
            outputs = [t.numpy() for t in session.run_graph(1, inputs)]
            check(outputs, inputs)
            entry = session._graphs[1]
            assert compiled is None or entry.compiled is compiled  # never recompiled
            compiled = entry.compiled
        assert compiled.gears is not None and len(compiled.gears.gears) == 2
        model = Model.from_bytes(session.get_compiled_model(1))
        assert model.get_dynamic_batch() == [2, 5]
        inputs = inputs_for(5)
        check(model.execute(inputs), inputs)


def test_session_options_make_gears(ge):
    with GeSession(OPTIONS) as session:
        session.add_graph(1, mlp_graph())
        session.compile_graph(1)
        summary = session.get_compiled_graph_summary(1)
        assert summary.output_shapes[0] == [5, 3]
        x, a = inputs_for(2)
        np.testing.assert_allclose(session.run_graph(1, [x, a])[1].numpy(), a + 1, rtol=1e-6)
