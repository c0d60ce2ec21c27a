"""attnkit.grading.replay: the trusted judge agrees with the kernel on honest and wrong work,
and is not fooled by results that lie.

Each chapter's notebook runs in one Python namespace standing for the kernel (the
:class:`Recorder` told about every cell, as the guard tells it), then :func:`judge` replays the
recording, each in a process of its own (tests/replay_runs.py). The batch grader's use of it
(judge.py as its own process, under bubblewrap) is tested by the hostile batch's ``forged``
case in tests/test_grading_robust.py.
"""

from __future__ import annotations

import os
import pickle
from copy import deepcopy

import matplotlib
import nbformat
import pytest
import torch
from grading import (
    assignments,
    correct_answers,
    source_notebook,
    wrong_answers,
)
from replay_runs import code_name, kernel_then_judge, rehearsed
from replay_runs import recorder as make_recorder

from attnkit.grading import probes
from attnkit.grading.cells import nbgrader_meta
from attnkit.grading.replay import (
    Replayer,
    ReplayError,
    decode,
    encode,
    judge,
    load_record,
    plain,
    plan,
    rehearse,
    same,
    signature,
    stub,
)

matplotlib.use("Agg")
ASSIGNMENTS = assignments()
# tests that also check how an answer computes, which only the kernel sees; a student keeps a
# test's points only if the kernel and the judge both pass it, so these checks still count
HOW_CHECKS = {  # (found by running every wrong answer of tests/wrong_answers/)
    ("ch03-masked-softmax", "q1_hidden"): "the size of the tensors the answer creates",
    ("ch05-sparse", "q1_hidden"): "the size of the tensors the answer creates",
    ("ch05-sparse", "q2_hidden"): "the size of the tensors the answer creates",
    ("ch06-lsh", "q2_hidden"): "the size of the tensors the answer creates",
    ("ch07-linear", "q2_hidden"): "how the number of operations grows with the chunk",
    ("ch07-linear", "q3_hidden"): "how the number of operations grows with the length",
}


def with_answers(assignment, answers):
    """The instructor's notebook (hidden tests included, as autograde runs it) with some
    solution cells replaced."""
    nb = source_notebook(assignment)
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if nbgrader_meta(cell).get("solution") and gid in answers:
            cell.source = answers[gid]
    return nb


@pytest.fixture(scope="module")
def rehearsals(tmp_path_factory):
    """The grader's rehearsal of each chapter, once: ``{assignment: (replay, calls file)}``.
    Every hidden test cell that the judge decides is stubbed: what its tests pass the
    answers is plain data or a probe (attnkit.grading.probes)."""
    done = {}

    def get(assignment):
        if assignment not in done:
            source = source_notebook(assignment)
            replay = plan(source)
            folder = tmp_path_factory.mktemp(f"rehearsal-{assignment}")
            calls, why = rehearsed(source, replay, folder)
            assert not why, f"{assignment}: hidden tests left in the kernel: {why}"
            assert any(c["stub"] for c in replay["cells"]), "nothing is stubbed"
            done[assignment] = replay, calls
        return done[assignment]

    return get


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_judge_passes_honest_work_and_the_kept_tests_need_the_kernel(
    assignment, tmp_path, rehearsals
):
    """Honest work keeps its points: every judged test the kernel passes, the judge passes,
    for the solution and for correct answers written differently, graded as the grader does
    (the hidden tests stubbed in the kernel and run in the judge). A test marked to keep the
    kernel's verdict says why and really fails when replayed (the solution's recording is
    judged as if nothing were marked, nothing stubbed), so no mark is an easy way out."""
    replay, calls = rehearsals(assignment)
    kept = {c["grade_id"]: c for c in replay["cells"] if not c["replay"]}
    for cell in kept.values():
        assert cell["kind"] == "test" and len(cell["why"]) > 20, cell
    unmarked = deepcopy(replay)
    for cell in unmarked["cells"]:
        cell["replay"] = True
    ways = correct_answers(assignment)
    runs = {"solution": ({}, unmarked, None)}
    for i in range(max(map(len, ways.values()), default=0)):  # every alternative once
        answers = {q: w[i][1] for q, w in ways.items() if i < len(w)}
        runs[f"alternatives {i}"] = (answers, replay, calls)
    for label, (answers, judged_by, rehearsed_calls) in runs.items():
        kernel, verdicts = kernel_then_judge(
            with_answers(assignment, answers),
            judged_by,
            tmp_path / label,
            rehearsed_calls,
        )
        assert verdicts, "no test is judged"
        if judged_by is replay:
            assert kept.keys().isdisjoint(verdicts)
        for gid, why in verdicts.items():
            assert kernel[gid] is None, (
                f"{label}: the kernel fails {gid}: {kernel[gid]}"
            )
            if gid in kept:
                assert why is not None, (
                    f"{gid} is kept from the replay, and needs not be"
                )
            else:
                assert why is None, (
                    f"{label}: {gid} passes in the kernel, not replayed: {why}"
                )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_judge_fails_wrong_answers_as_the_kernel_does(
    assignment, tmp_path, rehearsals
):
    """The first wrong answer of each question, all in one notebook, graded as the grader
    does: every judged test, stubbed hidden tests included, has the verdict the same test
    gets when it runs in the kernel, source and all (every wrong answer was run once by
    hand: see HOW_CHECKS; a wrong answer caught only by a test kept from the replay, such as
    ch01's q1, loses nothing here)."""
    replay, calls = rehearsals(assignment)
    wrong = {q: ways[0][1] for q, ways in wrong_answers(assignment).items()}
    nb = with_answers(assignment, wrong)
    inside, _ = kernel_then_judge(nb, replay, tmp_path / "in", judged=False)
    kernel, verdicts = kernel_then_judge(nb, replay, tmp_path / "out", calls)
    stubbed = {c["grade_id"] for c in replay["cells"] if c["stub"]}
    for gid, why in verdicts.items():
        if gid in stubbed:
            assert kernel[gid] is None  # the stub itself never fails
        elif why is None and kernel[gid] and (assignment, gid) in HOW_CHECKS:
            continue  # a check of how the answer computes: the kernel's alone (it counts)
        assert (why is None) == (inside[gid] is None), (
            f"{gid}: in the kernel {inside[gid]!r}, judged {why!r}"
        )
    lost = {g for g, why in verdicts.items() if why}
    assert lost & stubbed, "no wrong answer failed a stubbed hidden test"


def _one_question(setup, answer, test):
    """A notebook of a setup cell, the answer ``q1`` and its test cell ``q1_hidden``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(setup),
        nbformat.v4.new_code_cell(
            answer, metadata={"nbgrader": {"solution": True, "grade_id": "q1"}}
        ),
        nbformat.v4.new_code_cell(
            test, metadata={"nbgrader": {"grade": True, "grade_id": "q1_hidden"}}
        ),
    ]
    return nb


def _stubbed(tmp_path, answer, solution, test, setup="import torch"):
    """A one-question notebook whose hidden test ``test`` is stubbed: rehearsed with
    ``solution``, the stub's calls recorded with ``answer``, judged; the test's verdict."""
    hidden = f"# more tests\n### BEGIN HIDDEN TESTS\n{test}\n### END HIDDEN TESTS"
    nb = _one_question(setup, solution, hidden)
    replay = plan(nb)
    assert replay["cells"][2]["stub"]
    encoded, why = rehearse(nb, replay)
    assert not why

    def calls():  # the kernel's and the judge's copies, as each reads its own file
        copy = deepcopy(encoded)
        return {k: [(n, *decode([a, kw])) for n, a, kw in v] for k, v in copy.items()}

    recorder = make_recorder(str(tmp_path), replay)
    ns = {"__name__": "__main__"}
    exec(setup, ns)
    recorder.enter(code_name(answer), ns)
    exec(answer, ns)
    recorder.enter(code_name(stub("c2")), ns)
    recorder.run_hidden("c2", calls()["c2"], ns)
    return judge(replay, tmp_path, rehearsed=calls())["q1_hidden"]


def _verdicts(tmp_path, test, right, wrong):
    """The answer ``right`` passes the stubbed hidden ``test`` (rehearsed with it), and each
    of ``wrong`` (``{label: (answer, the judge's verdict)}``) gets its verdict."""
    assert _stubbed(tmp_path / "right", right, right, test) is None
    for label, (answer, verdict) in wrong.items():
        why = _stubbed(tmp_path / label, answer, right, test)
        assert why == verdict, (label, why)


def test_a_stubbed_test_sees_in_place_changes_chained_calls_and_errors(tmp_path):
    """What the stub records is enough for the tests: an answer that changes its input in
    place is seen (the judge's argument changes as the kernel's did), so is one that draws
    from torch's global generator, a call on the result of an earlier call gets the
    student's result, and an exception is the answer's."""
    solution = "def f(x):\n    return 2 * x\ndef g(y):\n    return y + 1"
    test = (
        "x = torch.arange(4.0)\n"
        "state = torch.get_rng_state()\n"
        "y = f(x)\n"
        "assert torch.equal(state, torch.get_rng_state()), 'the global generator moved'\n"
        "assert torch.equal(x, torch.arange(4.0)), 'x was changed in place'\n"
        "assert torch.allclose(g(y), 2 * x + 1), 'g(f(x))'\n"
        "try:\n    f('a')\nexcept TypeError:\n    pass\n"
        "else:\n    raise AssertionError('no TypeError for a string')\n"
    )
    check = "\n    if isinstance(x, str):\n        raise TypeError('x: a tensor')\n"
    right = solution.replace("def f(x):", "def f(x):" + check)
    assert _stubbed(tmp_path / "right", right, right, test) is None
    in_place = right.replace("return 2 * x", "return x.mul_(2)")
    why = _stubbed(tmp_path / "in-place", in_place, right, test)
    assert why == "AssertionError: x was changed in place", why
    draws = right.replace("return 2 * x", "return 2 * x + 0 * torch.rand(())")
    why = _stubbed(tmp_path / "draws", draws, right, test)
    assert why == "AssertionError: the global generator moved", why
    wrong_g = right.replace("return y + 1", "return y - 1")
    assert _stubbed(tmp_path / "g", wrong_g, right, test) == "AssertionError: g(f(x))"
    # a wrong f: g is called with other arguments than rehearsed, which the judge refuses
    wrong_f = right.replace("return 2 * x", "return 3 * x")
    why = _stubbed(tmp_path / "f", wrong_f, right, test)
    assert why.startswith("ReplayError: this test passes g other arguments"), why
    no_error = solution
    why = _stubbed(tmp_path / "no-error", no_error, right, test)
    assert why == "AssertionError: no TypeError for a string", why


def test_a_stubbed_test_measures_the_answers_operations(tmp_path):
    """A hidden test that watches the answer's operations with its own dispatch mode (the
    largest tensor made, how many operations ran) sees, in the judge, what the kernel's call
    did: a blocked answer passes, one that builds the whole L x S matrix does not."""
    test = (
        "from torch.utils._python_dispatch import TorchDispatchMode\n"
        "class _Watch(TorchDispatchMode):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.largest, self.count = 0, 0\n"
        "    def __torch_dispatch__(self, func, types, args=(), kwargs=None):\n"
        "        out = func(*args, **(kwargs or {}))\n"
        "        self.count += 1\n"
        "        if isinstance(out, torch.Tensor):\n"
        "            self.largest = max(self.largest, out.numel())\n"
        "        return out\n"
        "q, k = torch.randn(64, 2, generator=torch.Generator().manual_seed(0)).chunk(2)\n"
        "with _Watch() as w:\n"
        "    got = row_max(q, k)\n"
        "assert torch.allclose(got, (q @ k.T).amax(1)), 'wrong values'\n"
        "assert 0 < w.largest < 32 * 32, f'a tensor of {w.largest} elements'\n"
        "assert w.count > 0\n"
    )
    blocked = (
        "def row_max(q, k):\n"
        "    return torch.stack([(q[i:i + 8] @ k.T).amax(1) for i in range(0, 32, 8)])"
        ".flatten()"
    )
    assert _stubbed(tmp_path / "blocked", blocked, blocked, test) is None
    whole = "def row_max(q, k):\n    return (q @ k.T).amax(1)"
    why = _stubbed(tmp_path / "whole", whole, blocked, test)
    assert why == "AssertionError: a tensor of 1024 elements", why


def test_a_probe_tells_the_judge_what_it_saw_in_the_kernel(tmp_path):
    """A hidden test may hand an answer a probe (attnkit.grading.probes): the kernel builds it
    from its name, and what it saw there (its calls, its parameters' gradients) is what the
    test reads in the judge; a result that still requires gradients does there too."""
    test = (
        "from attnkit.grading.probes import CountedBranch\n"
        "F = CountedBranch(3, 0)\n"
        "x = torch.randn(2, 3, dtype=torch.float64, "
        "generator=torch.Generator().manual_seed(0))\n"
        "want = F(F(x)).detach()\n"
        "F.calls = 0\n"
        "y = twice(F, x)\n"
        "torch.testing.assert_close(y, want, msg='wrong values')\n"
        "assert not y.requires_grad, 'detach the result'\n"
        "assert F.calls == 2, f'F called {F.calls} times'\n"
        "assert all(p.grad is None for p in F.parameters()), 'gradients'\n"
    )
    right = "def twice(F, x):\n    return F(F(x)).detach()"
    thrice = "def twice(F, x):\n    F(x)\n    return F(F(x)).detach()"
    attached = "def twice(F, x):\n    return F(F(x))"
    backward = "def twice(F, x):\n    y = F(F(x))\n    y.sum().backward()\n    return y.detach()"
    _verdicts(
        tmp_path,
        test,
        right,
        {
            "thrice": (thrice, "AssertionError: F called 3 times"),
            "attached": (attached, "AssertionError: detach the result"),
            "backward": (backward, "AssertionError: gradients"),
        },
    )


def test_a_gradient_through_the_answer_reaches_the_judge(tmp_path):
    """A hidden test that takes a gradient through the answer gets, in the judge, the one the
    kernel's autograd gives (its Jacobian is recorded); an answer that cuts the graph, or
    depends on its input in a way it does not show, fails there as it would in the kernel."""
    test = (
        "x = torch.randn(4, dtype=torch.float64, "
        "generator=torch.Generator().manual_seed(0), requires_grad=True)\n"
        "y = f(x)\n"
        "assert y.requires_grad, 'keep y differentiable'\n"
        "y.sum().backward()\n"
        "assert x.grad is not None, 'no gradient reaches x'\n"
        "z = x.detach()\n"
        "torch.testing.assert_close(y, z.sin() * z, msg='wrong values')\n"
        "torch.testing.assert_close(x.grad, z.sin() + z * z.cos(), msg='wrong gradient')\n"
    )
    right = "def f(x):\n    return x.sin() * x"
    cut = "def f(x):\n    return (x.sin() * x).detach()"
    half = "def f(x):\n    return x.detach().sin() * x"
    other = (
        "def f(x):\n    w = torch.ones(4, dtype=x.dtype, requires_grad=True)\n"
        "    return w * (x.sin() * x).detach()"
    )
    _verdicts(
        tmp_path,
        test,
        right,
        {
            "cut": (cut, "AssertionError: keep y differentiable"),
            "half": (half, "AssertionError: wrong gradient"),
            "other": (other, "AssertionError: no gradient reaches x"),
        },
    )


def test_encoded_arguments_come_back_the_same():
    g = torch.Generator().manual_seed(3)
    args = [
        torch.arange(6.0).view(2, 3)[:, 1],
        g,
        range(2, 9, 3),
        {"k": (1, 2.5, None)},
    ]
    back = decode(encode(args))
    assert torch.equal(back[0], args[0]) and back[0].shape == (2,)
    assert torch.equal(back[1].get_state(), g.get_state()) and back[1] is not g
    assert back[2] == range(2, 9, 3) and back[3] == {"k": (1, 2.5, None)}
    assert same(args, back)
    assert not same([torch.zeros(2)], [torch.zeros(3)])
    assert not same([torch.zeros(2)], [torch.zeros(2, dtype=torch.float64)])
    assert not same([1.0], [1.1]) and same([1.0], [1.0 + 1e-9])
    assert not same(["a"], ["b"]) and not same([1], [True])
    with pytest.raises(TypeError, match="a function"):
        encode([lambda: 0])
    # a probe: built again from its name and spec, in the state it was in
    branch = probes.CountedBranch(4, 7)
    branch(torch.zeros(4, dtype=torch.float64))
    fixed = probes.Fixed(torch.arange(3.0))
    back = decode(encode([branch, fixed]))
    assert type(back[0]) is probes.CountedBranch and back[0].calls == 1
    assert torch.equal(back[0].w1, branch.w1) and torch.equal(back[1].out, fixed.out)
    assert same([branch, fixed], back)
    assert not same([probes.CountedBranch(4, 8)], [branch])
    grad = torch.ones(2, requires_grad=True)
    assert decode(encode([grad]))[0].requires_grad


# lying results, and a recording written by hand


class Liar(torch.Tensor):
    """A tensor whose comparisons all succeed."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})


class LiarFloat(float):
    def __sub__(self, other):
        return 0.0

    __rsub__ = __sub__

    def __eq__(self, other):
        return True

    __hash__ = float.__hash__


def test_plain_drops_what_lies():
    t = torch.zeros(3).as_subclass(Liar)
    assert torch.allclose(t, torch.ones(3))  # it lies
    p = plain({"out": (t, [LiarFloat(0.5)])})
    assert type(p["out"][0]) is torch.Tensor and not torch.allclose(
        p["out"][0], torch.ones(3)
    )
    assert type(p["out"][1][0]) is float and p["out"][1][0] - 1.0 == -0.5
    with pytest.raises(TypeError, match="a function"):
        plain(lambda: 0)


def _record(tmp_path, source, answer, test, setup="import torch"):
    nb = _one_question(setup, answer, test)
    replay = plan(nb)
    student = nbformat.from_dict(nb)
    student.cells[1].source = source
    recorder = make_recorder(str(tmp_path), replay)
    ns = {"__name__": "__main__"}
    kernel = None
    for cell in student.cells:
        recorder.enter(code_name(cell.source), ns)
        try:
            exec(cell.source, ns)
        except Exception as exc:
            kernel = exc
    return replay, kernel


TEST = "x = torch.arange(4.0)\nassert torch.allclose(f(x), x * 2), 'double it'\n"


def test_a_lying_tensor_passes_in_the_kernel_and_fails_in_the_judge(tmp_path):
    liar = (
        "import torch\n"
        "class Liar(torch.Tensor):\n"
        "    @classmethod\n"
        "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
        "        if func is torch.allclose:\n            return True\n"
        "        return super().__torch_function__(func, types, args, kwargs or {})\n"
        "def f(x):\n    return x.as_subclass(Liar)\n"
    )
    replay, kernel = _record(tmp_path, liar, "def f(x):\n    return 2 * x", TEST)
    assert kernel is None  # the kernel was fooled
    assert judge(replay, tmp_path)["q1_hidden"].startswith("AssertionError: double it")
    right, kernel = _record(
        tmp_path / "right",
        "def f(x):\n    return x + x",
        "def f(x):\n    return 2 * x",
        TEST,
    )
    assert kernel is None and judge(right, tmp_path / "right") == {"q1_hidden": None}


def test_a_hand_written_record_runs_no_code_and_is_no_pass(tmp_path):
    """A pickle that would run a command when loaded (and an object with methods) is refused
    by ``weights_only``; the test fails with the file named, nothing runs."""
    replay, _ = _record(
        tmp_path, "def f(x):\n    return x", "def f(x):\n    return 2 * x", TEST
    )
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    calls = [p for p in os.listdir(tmp_path) if p.endswith(".pt") and "values" not in p]
    assert calls
    for name in calls:
        with open(tmp_path / name, "wb") as f:
            pickle.dump(("f", None, ("return", Evil())), f)
    calls_read, _, problems = load_record(tmp_path)
    assert problems and not marker.exists()
    why = judge(replay, tmp_path)["q1_hidden"]
    assert "ReplayError" in why and not marker.exists()


def test_the_replay_is_not_swallowed_and_checks_the_calls():
    calls = __import__("collections").deque(
        [("f", signature((torch.zeros(2),), {}), ("return", torch.ones(2)))]
    )
    f = Replayer("f", calls)
    with pytest.raises(ReplayError, match="other arguments"):
        f(torch.zeros(3))
    assert not issubclass(
        ReplayError, Exception
    )  # `except Exception:` in a test cannot hide it
    with pytest.raises(ReplayError, match="more times"):
        try:
            f(torch.zeros(2))
        except Exception:
            pass


def test_exceptions_replay_as_the_nearest_builtin_class(tmp_path):
    """A student's own ValueError subclass, raised for bad input, passes a test that expects a
    ValueError, in the judge as in the kernel."""
    answer = (
        "class ShapeError(ValueError):\n    pass\n"
        "def f(x):\n    if x.dim() != 1:\n        raise ShapeError('x: expected 1-D')\n"
        "    return 2 * x"
    )
    test = TEST + (
        "try:\n    f(torch.zeros(2, 2))\nexcept ValueError as e:\n    assert 'x:' in str(e)\n"
        "else:\n    raise AssertionError('no error for a 2-D x')\n"
    )
    replay, kernel = _record(tmp_path, answer, "def f(x):\n    return 2 * x", test)
    assert kernel is None and judge(replay, tmp_path) == {"q1_hidden": None}


def test_a_test_input_is_never_taken_from_the_student(tmp_path):
    """The answer cell overwrites the test's input ``x`` with zeros, where a wrong ``f``
    (zeros out) looks right: the kernel is fooled, the judge uses its own ``x``."""
    setup = "import torch\nx = torch.arange(4.0)"
    test = "assert torch.allclose(f(x), x * 2), 'double it'\n"
    answer = "def f(x):\n    return 2 * x\nx = x.clone()\ny = 1"  # assigns x too
    cheat = "def f(x):\n    return torch.zeros_like(x)\nx = torch.zeros(4)\ny = 1"
    replay, kernel = _record(tmp_path, cheat, answer, test, setup)
    assert kernel is None and replay["values"] == ["y"]
    assert judge(replay, tmp_path)["q1_hidden"].startswith("AssertionError: double it")


def test_a_forged_value_or_meta_tensor_in_the_record_is_no_pass(tmp_path):
    """A values file rewritten to hold a name the answers do not assign (``device`` = meta,
    so that the test's tensors hold no numbers and ``assert_close`` compares nothing) is not
    used, and a meta tensor returned for real inputs is not replayed."""
    setup = "import torch\ndevice = 'cpu'"
    test = "x = torch.arange(4.0, device=device)\ntorch.testing.assert_close(f(x), x * 2)\n"
    cheat = "def f(x):\n    return torch.empty(x.shape, device='meta')"
    replay, _ = _record(tmp_path, cheat, "def f(x):\n    return 2 * x", test, setup)
    (values,) = [
        p for p in os.listdir(tmp_path) if p.endswith(".values.pt") and "c2." in p
    ]
    torch.save({"device": ("return", torch.device("meta"))}, tmp_path / values)
    why = judge(replay, tmp_path)["q1_hidden"]
    assert why is not None and "returned a meta tensor for real inputs" in why, why


def test_a_malformed_record_of_gradients_is_no_pass(tmp_path):
    """The Jacobians a call's record holds must fit the call: a record rewritten to give the
    gradient another shape fails the test, it does not pass it."""
    test = (
        "x = torch.arange(4.0, requires_grad=True)\n"
        "f(x).sum().backward()\n"
        "assert x.grad is not None and torch.equal(x.grad, torch.full((4,), 2.0))\n"
    )
    right = "def f(x):\n    return 2 * x"
    replay, kernel = _record(tmp_path, right, right, test)
    assert kernel is None and judge(replay, tmp_path)["q1_hidden"] is None
    (path,) = [p for p in tmp_path.iterdir() if p.name.startswith("c2.0")]
    name, sig, outcome, extra = torch.load(path, weights_only=True)
    assert [(i, j, J.shape) for i, j, J in extra["jacobians"]] == [(0, 0, (4, 4))]
    extra["jacobians"] = [(0, 0, torch.eye(3))]
    torch.save((name, sig, outcome, extra), path)
    why = judge(replay, tmp_path)["q1_hidden"]
    assert why == "ReplayError: a malformed record of gradients", why


@pytest.mark.parametrize(
    "answer",
    [
        # a view into a buffer larger than any one recorded result may be
        "def f(x):\n    buf = torch.zeros(20_000_000)\n    buf[:4] = 2 * x\n    return buf[:4]",
        # a class used as the function the question asks for
        "class f:\n    def __new__(cls, x):\n        return 2 * x",
    ],
    ids=["view-of-a-large-buffer", "class-as-function"],
)
def test_unusual_but_correct_answers_pass_the_judge(tmp_path, answer):
    replay, kernel = _record(tmp_path, answer, "def f(x):\n    return 2 * x", TEST)
    assert kernel is None and judge(replay, tmp_path) == {"q1_hidden": None}


def test_any_file_in_the_record_folder_is_read_without_error(tmp_path):
    """Whatever a student leaves under a record's name (a number, garbage, an empty file) is
    a failed replay for its cell, never an error of the judge."""
    replay, _ = _record(
        tmp_path, "def f(x):\n    return 2 * x", "def f(x):\n    return 2 * x", TEST
    )
    calls = sorted(p for p in os.listdir(tmp_path) if not p.endswith("values.pt"))
    torch.save(7, tmp_path / calls[0])
    (tmp_path / "c2.999998.pt").write_bytes(b"\x00garbage")
    (tmp_path / "c2.999999.pt").write_bytes(b"")
    (tmp_path / "c2.values.pt").write_bytes(b"PK\x03\x04")
    calls_read, _, problems = load_record(tmp_path)
    assert len(problems) == 3
    assert "a malformed record" in judge(replay, tmp_path)["q1_hidden"]
