"""Problems in one style: the schema's errors in our sentences, hints split off, positions filled in."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from datashare.policy.problems import MISSING_KEY, Problem, drop_explained, locate, schema_problems, unknown_key


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["copula", "mst"]
    bounds: dict[str, tuple[float | int, float | int]] = Field(default_factory=dict)


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z]+$")
    version: int = Field(ge=1, strict=True)
    names: list[str] = Field(min_length=1)
    inner: _Inner


def _problems(document: dict) -> list[str]:
    try:
        _Outer.model_validate(document)
    except ValidationError as exc:
        found = schema_problems(exc.errors(), document, lambda loc: ["method", "bounds"] if loc[:1] == ("inner",)
                                else list(_Outer.model_fields), {r"^[a-z]+$": "must be lower-case letters"})
        return [p.text for p in drop_explained(found)]
    return []


def test_schema_errors_are_our_sentences_with_their_key_path():
    assert _problems({"name": "A", "version": True, "names": [], "inner": {"method": "gan", "bounds": {"x": ["a", 1]},
                                                                         "metod": 1}}) == [
        "name: must be lower-case letters",
        "version: must be a whole number, not true or false (YAML reads yes, no, on and off as those)",
        "names: may not be empty",
        "inner.method: must be one of copula, mst",
        "inner.bounds.x.0: must be a number or a whole number",
        "inner.metod: unknown key 'metod' (did you mean 'method'?)",
    ]
    assert _problems({"name": "a", "version": 0, "names": ["x"], "inner": {"method": "mts", "bounds": {"x": [1]}}}) == [
        "version: must be at least 1", "inner.method: must be one of copula, mst (did you mean 'mst'?)",
        "inner.bounds.x: needs 2 values, not 1"]
    assert _problems({"name": "a", "version": 1, "names": ["x"], "inner": {"method": "mst", "bounds": {1: [1, 2]}}}) \
        == ["inner.bounds.1: a key here must be a name (text) (write it in quotes)"]


def test_a_typo_of_a_missing_key_is_one_problem_not_two():
    assert _problems({"name": "a", "version": 1, "names": ["x"], "iner": {"method": "mst"}}) == [
        "iner: unknown key 'iner' (did you mean 'inner'?)"]
    assert _problems({"name": "a", "version": 1, "names": ["x"]}) == ["inner: the required key 'inner' is missing"]


def test_a_hint_is_split_off_and_every_problem_is_located():
    problem = Problem.of(("a", "b"), "unknown option 'x' for mask (did you mean 'y'?)")
    assert (problem.message, problem.hint) == ("unknown option 'x' for mask", "did you mean 'y'?")
    assert Problem.of(("a",), "must be a date (YYYY-MM-DD)").hint is None
    missing = Problem(("a", "b"), "the required key 'b' is missing", kind=MISSING_KEY, at=("a",))
    located = locate([problem, missing], lambda path: (len(path), 7))
    assert [p.position for p in located] == [(2, 7), (1, 7)]
    assert located[0].located("f.yaml") == "f.yaml:2:7: a.b: unknown option 'x' for mask (did you mean 'y'?)"
    assert located[1].as_dict("f.yaml") == {"file": "f.yaml", "path": "a.b", "line": 1, "column": 7,
                                            "message": "the required key 'b' is missing", "hint": None}
    assert unknown_key(("zzz",), ["alpha", "beta"]).hint == "known: alpha, beta"
