"""nbgrader preprocessors that keep the autograder's secrets out of what students see.

``nbgrader generate_feedback`` renders the autograded notebook, whose test cells carry the
hidden tests again (autograde restores them from the gradebook). :class:`HideHiddenTests`
removes them before rendering, and :class:`ShortTracebacks` reduces every error to its
last line, because a traceback quotes the failing line of a hidden test. The diagnostic
message itself (from ``zoolib.checks``) is that last line, so the student keeps it.
"""
from __future__ import annotations

from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor
from traitlets import Integer


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


class ScrubLeaks(NbGraderPreprocessor):
    """Redact hidden-test text from every output the student will see.

    Student code runs inside the hidden tests and can read their source (from IPython's
    history, the line cache or the calling frame) and print it, or raise an error that
    quotes it. Any output line that contains a line of a hidden test (of at least
    ``min_length`` characters) is replaced, and each output is cut at ``max_chars``.
    """

    min_length = Integer(16).tag(config=True)
    max_chars = Integer(20_000).tag(config=True)
    notice = "[hidden test text removed]"

    def preprocess(self, nb, resources):
        self._secrets = _hidden_lines(resources, self.min_length)
        return super().preprocess(nb, resources)

    def _clean(self, text: str) -> str:
        if self._secrets:
            text = "\n".join(self.notice if any(s in line for s in self._secrets) else line
                             for line in text.split("\n"))
        if len(text) > self.max_chars:
            text = text[: self.max_chars] + f"\n[output cut at {self.max_chars:,} characters]"
        return text

    def preprocess_cell(self, cell, resources, cell_index):
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = self._clean(output["text"] if isinstance(output["text"], str)
                                             else "".join(output["text"]))
            if "evalue" in output:
                output["evalue"] = self._clean(output["evalue"])
                output["traceback"] = [self._clean(line) for line in output.get("traceback", [])]
            for mime, value in list(output.get("data", {}).items()):
                if isinstance(value, str) and (mime.startswith("text/") or mime.endswith(("json", "javascript"))):
                    output["data"][mime] = self._clean(value)
        return cell, resources


def _hidden_lines(resources, min_length: int) -> list[str]:
    from nbgrader.api import Gradebook, MissingEntry

    info = resources.get("nbgrader", {})
    try:
        with Gradebook(info["db_url"]) as gb:
            cells = gb.find_notebook(info["notebook"], info["assignment"]).source_cells
            sources = [c.source for c in cells]
    except (KeyError, MissingEntry):
        return []
    lines = []
    for source in sources:
        inside = False
        for line in source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) >= min_length:
                lines.append(line.strip())
    return lines
