"""nbgrader preprocessors that keep the autograder's secrets out of what students see.

``nbgrader generate_feedback`` renders the autograded notebook, whose test cells carry the
hidden tests again (autograde restores them from the gradebook). :class:`HideHiddenTests`
removes them before rendering, and :class:`ShortTracebacks` reduces every error to its
last line, because a traceback quotes the failing line of a hidden test. The diagnostic
message itself (from ``zoolib.checks``) is that last line, so the student keeps it.
"""
from __future__ import annotations

from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor


class HideHiddenTests(ClearHiddenTests):
    """``ClearHiddenTests`` for feedback: drop the hidden region, say that tests were hidden."""

    def _remove_hidden_test_region(self, cell):
        removed = super()._remove_hidden_test_region(cell)
        if removed:
            cell.source = cell.source.rstrip() + "\n# (hidden tests ran here)"
        return removed


class ShortTracebacks(NbGraderPreprocessor):
    """Keep only ``ErrorName: message`` of each error output."""

    def preprocess_cell(self, cell, resources, cell_index):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources
