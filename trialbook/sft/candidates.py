"""Converted examples waiting for dedup and selection, kept column by column.

Each example's bytes are in a spool file; what selection and the statistics need of it (sort
key, digest, counts, where it was spooled) is held here in typed arrays, with task, variant
and tool names stored once each: about a hundred bytes per example plus its id, so a job of
any number of trials fits (a list of per-example objects took ~1.5 KB each).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from trialbook.sft.sharegpt import ShareGptNotes
from trialbook.sft.stats import ExampleFacts

DIGEST_SIZE = 16
_NOTE_FIELDS = ShareGptNotes.__slots__
#: ``score_kind`` values: how to give a score back as it came (an int score stays an int).
_NO_SCORE, _FLOAT_SCORE, _INT_SCORE = 0, 1, 2


class Candidates:
    """A table of candidates, appended to as examples are converted (index = order of arrival)."""

    def __init__(self) -> None:
        #: Task, variant and tool names, each stored once; the columns hold their positions here.
        self.names: list[str] = []
        self._name_ids: dict[str, int] = {}
        #: Example ids, UTF-8 end to end: id i is id_bytes[id_end[i - 1]:id_end[i]] (no object each).
        self.id_bytes = bytearray()
        self.id_end = array("Q")
        self.task = array("L")
        self.variant = array("L")
        self.attempt = array("q")
        self.digests = bytearray()
        self.spool = array("L")
        self.offset = array("Q")
        self.im_len = array("Q")
        self.lf_len = array("Q")
        self.tokens = array("q")
        self.messages = array("q")
        self.assistant_turns = array("q")
        self.parallel_turns = array("q")
        self.score = array("d")
        self.score_kind = bytearray()
        self.resolved = bytearray()
        #: Tool-call names of example i: tool_names[tool_start[i]:tool_start[i + 1]].
        self.tool_names = array("L")
        self.tool_start = array("Q", [0])
        #: The sharegpt notes of example i: notes[5 * i: 5 * i + 5] (in ShareGptNotes' field order).
        self.notes = array("q")

    def __len__(self) -> int:
        return len(self.id_end)

    def _name(self, name: str) -> int:
        found = self._name_ids.get(name)
        if found is None:
            found = self._name_ids[name] = len(self.names)
            self.names.append(name)
        return found

    def add(self, facts: ExampleFacts, *, attempt: int, id: str, digest: bytes, notes: ShareGptNotes,
            spool: int, offset: int, im_len: int, lf_len: int) -> int:
        """Append one candidate; returns its index (its token count may be set later)."""
        if len(digest) != DIGEST_SIZE:
            raise ValueError(f"digest must be {DIGEST_SIZE} bytes")
        self.id_bytes += id.encode("utf-8", "surrogatepass")
        self.id_end.append(len(self.id_bytes))
        self.task.append(self._name(facts.task))
        self.variant.append(self._name(facts.variant))
        self.attempt.append(attempt)
        self.digests += digest
        self.spool.append(spool)
        self.offset.append(offset)
        self.im_len.append(im_len)
        self.lf_len.append(lf_len)
        self.tokens.append(facts.tokens)
        self.messages.append(facts.messages)
        self.assistant_turns.append(facts.assistant_turns)
        self.parallel_turns.append(facts.parallel_turns)
        score = facts.score
        self.score.append(0.0 if score is None else score)
        self.score_kind.append(_NO_SCORE if score is None else _INT_SCORE if type(score) is int else _FLOAT_SCORE)
        self.resolved.append(bool(facts.resolved))
        self.tool_names.extend(self._name(n) for n in facts.tool_names)
        self.tool_start.append(len(self.tool_names))
        self.notes.extend(getattr(notes, name) for name in _NOTE_FIELDS)
        return len(self.id_end) - 1

    def id_of(self, i: int) -> bytes:
        """Candidate ``i``'s id, UTF-8 encoded (byte order is the strings' code point order)."""
        return bytes(self.id_bytes[self.id_end[i - 1] if i else 0: self.id_end[i]])

    def digest(self, i: int) -> bytes:
        return bytes(self.digests[DIGEST_SIZE * i: DIGEST_SIZE * (i + 1)])

    def score_of(self, i: int) -> float | None:
        """The score as it came (None, an int or a float)."""
        kind = self.score_kind[i]
        if kind == _NO_SCORE:
            return None
        return int(self.score[i]) if kind == _INT_SCORE else self.score[i]

    def output_order(self) -> list[int]:
        """Every index, in output order: by (task, variant, attempt, id).

        Two stable sorts (by id, then by the rank of task and variant and the attempt) instead
        of one over a tuple of strings per example: fewer objects at once for a big job.
        """
        order = sorted(range(len(self)), key=self.id_of)
        rank = {n: r for r, n in enumerate(sorted(set(self.names)))}
        ranks = [rank[n] for n in self.names]
        task, variant, attempt = self.task, self.variant, self.attempt
        order.sort(key=lambda i: (ranks[task[i]], ranks[variant[i]], attempt[i]))
        return order

    def task_name(self, i: int) -> str:
        return self.names[self.task[i]]

    def facts(self, i: int) -> ExampleFacts:
        """What the statistics need of candidate ``i``."""
        names = self.names
        return ExampleFacts(
            task=names[self.task[i]], variant=names[self.variant[i]], score=self.score_of(i),
            resolved=bool(self.resolved[i]), tokens=self.tokens[i], messages=self.messages[i],
            assistant_turns=self.assistant_turns[i],
            tool_names=tuple(names[n] for n in self.tool_names[self.tool_start[i]: self.tool_start[i + 1]]),
            parallel_turns=self.parallel_turns[i],
        )

    def sum_notes(self, indices: Sequence[int]) -> ShareGptNotes:
        """The sharegpt notes of the candidates at ``indices``, summed."""
        width = len(_NOTE_FIELDS)
        sums = [0] * width
        notes = self.notes
        for i in indices:
            for k in range(width):
                sums[k] += notes[width * i + k]
        return ShareGptNotes(*sums)

    def extend(self, other: Candidates) -> None:
        """Append every candidate of ``other`` (another part of the same conversion), in its order."""
        remap = [self._name(name) for name in other.names]
        base_id = len(self.id_bytes)
        self.id_bytes += other.id_bytes
        self.id_end.extend(base_id + end for end in other.id_end)
        self.task.extend(remap[t] for t in other.task)
        self.variant.extend(remap[v] for v in other.variant)
        self.tool_names.extend(remap[n] for n in other.tool_names)
        base = self.tool_start[-1]
        self.tool_start.extend(base + s for s in other.tool_start[1:])
        for name in ("attempt", "spool", "offset", "im_len", "lf_len", "tokens", "messages", "assistant_turns",
                     "parallel_turns", "score", "notes"):
            getattr(self, name).extend(getattr(other, name))
        for name in ("digests", "score_kind", "resolved"):
            getattr(self, name).extend(getattr(other, name))
