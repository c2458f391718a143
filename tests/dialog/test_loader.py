"""Flow loader: every problem is reported at once, naming file, key path and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_app.dialog.loader import FlowError, check_flows, load_flows

ROOT = Path(__file__).resolve().parents[2]
BAD = Path(__file__).parent / "bad_flows"


def test_reference_flows_are_valid():
    fs = load_flows([ROOT / "flows", ROOT / "flows/menu"])
    assert {"reschedule_appointment", "billing_duplicate_charge", "order_status", "main_menu"} <= set(
        fs.flows
    )
    assert all(len(f.examples) >= 10 for f in fs.flows.values() if f.examples)
    assert fs.entry_flow == "main_menu"


def test_semantic_problems_all_reported_with_paths():
    problems = check_flows([BAD / "undefined_names.yaml"])
    text = "\n".join(problems)
    assert all(p.startswith(str(BAD / "undefined_names.yaml")) for p in problems)
    assert "flows.reschedule.steps[1].collect: undefined slot 'missing_slot'" in text
    assert "flows.reschedule.steps[2].call: unknown tool 'nope_tool'" in text
    assert "flows.reschedule.steps[3].args.b: not an argument of tool 'lookup'" in text
    assert "undefined name 'ghost'" in text
    assert "flows.reschedule.steps[4].branch[0].goto: unknown step 'nowhere'" in text
    assert (
        "flows.reschedule.slots.date.differs_from: 'booking.date' does not start with a tool result" in text
    )
    assert "flows.reschedule.slots.code.differs_from: only a date slot" in text


def test_unreachable_and_trapped_steps():
    path = BAD / "undefined_names.yaml"
    fixed = (
        path.read_text()
        .replace("      - collect: missing_slot\n", "")
        .replace("      - call: nope_tool\n", "")
        .replace(", differs_from: booking.date", "")
        .replace('      code: {type: digits, prompt: "Code?", differs_from: lookup.code}\n', "")
    )
    fixed = fixed.replace(', b: "{ghost}"', "").replace("goto: nowhere", "goto: loop")
    tmp = BAD.parent / "tmp_fixed.yaml"
    tmp.write_text(fixed)
    try:
        problems = check_flows([tmp])
    finally:
        tmp.unlink()
    assert any("steps[3]: part of a loop with no way out" in p for p in problems), problems
    assert any("steps[4]: unreachable" in p for p in problems), problems


def test_structural_problems_name_keys():
    problems = check_flows([BAD / "wrong_types.yaml"])
    text = "\n".join(problems)
    assert "flows.broken.description" in text
    assert "flows.broken.slots.when.type" in text
    assert "flows.broken.slots.when.max_retries" in text
    assert "flows.broken.steps[0].colour: unknown key" in text
    assert "flows.broken.steps[1]: a step needs exactly one of" in text


def test_bad_yaml_and_missing_file_in_one_error():
    with pytest.raises(FlowError) as err:
        load_flows([BAD / "not_yaml.yaml", BAD / "does_not_exist.yaml"])
    assert len(err.value.problems) == 2
    assert "not valid YAML (line" in err.value.problems[0]
    assert "does not exist" in err.value.problems[1]
