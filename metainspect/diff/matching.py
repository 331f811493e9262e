"""Pair the nodes of two graphs (or two function bodies) whose names differ.

Nodes pair by name first (or by rename rules the caller gives). The rest pair by structure:
each unpaired node gets a colour from its op and attrs (a name-free key the caller computes),
refined round by round with the colours of its inputs and consumers, where a paired node's
colour is its B name, until the colouring stops splitting. Two nodes alone in their colour,
one on each side, pair. When no colour is unique, names decide among equals: scope rules
learned from the pairs found so far, then the longest common trailing name components, then
file order. A structural pair is kept only if the two nodes have the same op and attrs and
their inputs are the same once A's names are mapped to B's; otherwise both stay unpaired.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence

from metainspect.checkpoint.renames import Rename
from metainspect.graph.model import Node
from metainspect.graph.names import split_reference

#: a reference split into (control marker, node name, output suffix such as ":1")
Splitter = Callable[[str], tuple[str, str, str]]
_MAX_ROUNDS = 16
#: name pairs scored by common trailing components, at most, in one group of equal nodes
_TAIL_PAIRS = 1 << 14
_UNPAIRED = "\0unpaired:"


def split_function_reference(ref: str) -> tuple[str, str, str]:
    """A FunctionDef body input: ``node:output_arg:index`` or an argument name (``^`` for control)."""
    control = "^" if ref.startswith("^") else ""
    name, sep, rest = ref[len(control):].partition(":")
    return control, name, sep + rest


class NodeSet:
    """One side's nodes with their inputs and consumers, for matching."""

    def __init__(self, nodes: Sequence[Node], split: Splitter = split_reference,
                 outputs: Mapping[str, str] | None = None) -> None:
        self.split = split
        self.nodes: dict[str, Node] = {}
        for node in nodes:
            self.nodes.setdefault(node.name, node)
        self.order = {name: i for i, name in enumerate(self.nodes)}
        self.inputs: dict[str, list[tuple[str, str]]] = {}
        self.consumers: dict[str, list[tuple[str | None, tuple[int, str]]]] = {}
        for name, node in self.nodes.items():
            refs = []
            for i, ref in enumerate(node.inputs):
                _, op, suffix = split(ref)
                refs.append((op, suffix))
                self.consumers.setdefault(op, []).append((name, (i, suffix)))
            self.inputs[name] = refs
            for control in node.control_inputs:
                self.consumers.setdefault(control, []).append((name, (-1, "^")))
        # function outputs (``ret``) hold nodes like consumers outside the body
        for key, ref in sorted((outputs or {}).items()):
            _, op, suffix = split(ref)
            self.consumers.setdefault(op, []).append((None, (-2, f"{key}{suffix}")))

    def mapped_inputs(self, name: str, pairs: Mapping[str, str] | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Data inputs (in order) and control inputs (sorted) of ``name`` with names mapped by
        ``pairs`` (None: as they are); a node of this set without a pair maps to a marker
        matching nothing."""
        def mapped(op: str) -> str:
            if pairs is None:
                return op
            if op in pairs:
                return pairs[op]
            return _UNPAIRED + op if op in self.nodes else op

        node = self.nodes[name]
        data = tuple(mapped(op) + suffix for op, suffix in self.inputs[name])
        return data, tuple(sorted(mapped(c) for c in node.control_inputs))


def match_nodes(a: NodeSet, b: NodeSet, key_a: Callable[[Node], Hashable], key_b: Callable[[Node], Hashable],
                seed: Mapping[str, str] | None = None) -> dict[str, str]:
    """A name -> B name for every pair: ``seed`` pairs, equal names, then structural pairs.

    ``key_a``/``key_b`` give each node's name-free key (op and attrs, A's names mapped).
    """
    pairs = {x: y for x, y in (seed or {}).items() if x in a.nodes and y in b.nodes}
    taken = set(pairs.values())
    for name in a.nodes:
        if name not in pairs and name in b.nodes and name not in taken:
            pairs[name] = name
            taken.add(name)
    unpaired_a = [n for n in a.nodes if n not in pairs]
    unpaired_b = [n for n in b.nodes if n not in taken]
    if not unpaired_a or not unpaired_b:
        return pairs
    base_a = {n: hash(key_a(a.nodes[n])) for n in unpaired_a}
    base_b = {n: hash(key_b(b.nodes[n])) for n in unpaired_b}
    found: dict[str, str] = {}
    # pairs next to an unpaired node are where propagation starts
    frontier = [(x, pairs[x]) for x in _neighbours(a, unpaired_a) if x in pairs]
    while True:
        found.update(_propagate(a, b, frontier, pairs, taken, base_a, base_b))
        unpaired_a = [n for n in unpaired_a if n not in pairs]
        unpaired_b = [n for n in unpaired_b if n not in taken]
        if not unpaired_a or not unpaired_b:
            break
        groups = _colour_groups(a, b, unpaired_a, unpaired_b, base_a, base_b, pairs, taken)
        new = {xs[0]: ys[0] for xs, ys in groups if len(xs) == 1 and len(ys) == 1}
        if not new:
            new = _by_names(a, b, groups, pairs)
        if not new:
            break
        pairs.update(new)
        found.update(new)
        taken.update(new.values())
        frontier = list(new.items())
    _drop_unsound(a, b, found, pairs, taken, base_a, base_b)
    return pairs


def _neighbours(side: NodeSet, names: Iterable[str]) -> set[str]:
    """Inputs and consumers of ``names``."""
    found: set[str] = set()
    for name in names:
        found.update(op for op, _ in side.inputs[name])
        found.update(side.nodes[name].control_inputs)
        found.update(c for c, _ in side.consumers.get(name, ()) if c is not None)
    return found


def _propagate(a: NodeSet, b: NodeSet, frontier: Iterable[tuple[str, str]], pairs: dict[str, str], taken: set[str],
               base_a: dict[str, int], base_b: dict[str, int]) -> dict[str, str]:
    """Pair outward from paired nodes: inputs in the same position, and consumers through the same
    input slot, when exactly one unpaired node with the same key is there on each side."""
    found: dict[str, str] = {}
    queue = deque(frontier)
    while queue:
        x, y = queue.popleft()
        candidates = []
        inputs_a, inputs_b = a.inputs.get(x, ()), b.inputs.get(y, ())
        if len(inputs_a) == len(inputs_b):
            for (op_a, suffix_a), (op_b, suffix_b) in zip(inputs_a, inputs_b):
                if (suffix_a == suffix_b and op_a in base_a and op_b in base_b and op_a not in pairs
                        and op_b not in taken and base_a[op_a] == base_b[op_b]):
                    candidates.append((op_a, op_b))
        by_slot_a = _unpaired_consumers(a, x, base_a, pairs)
        if by_slot_a:
            by_slot_b = _unpaired_consumers(b, y, base_b, taken)
            for key, xs in by_slot_a.items():
                ys = by_slot_b.get(key)
                if ys is not None and len(xs) == 1 and len(ys) == 1:
                    candidates.append((xs[0], ys[0]))
        for p, q in candidates:
            if p not in pairs and q not in taken:
                pairs[p] = q
                taken.add(q)
                found[p] = q
                queue.append((p, q))
    return found


def _unpaired_consumers(side: NodeSet, name: str, base: dict[str, int],
                        paired: Mapping[str, str] | set[str]) -> dict[tuple[tuple[int, str], int], list[str]]:
    """Unpaired consumers of ``name`` by (input slot, key); each consumer once per slot."""
    groups: dict[tuple[tuple[int, str], int], list[str]] = {}
    for consumer, slot in side.consumers.get(name, ()):
        if consumer is not None and consumer in base and consumer not in paired:
            group = groups.setdefault((slot, base[consumer]), [])
            if consumer not in group:
                group.append(consumer)
    return groups


def _colour_groups(a: NodeSet, b: NodeSet, unpaired_a: list[str], unpaired_b: list[str],
                   base_a: dict[str, int], base_b: dict[str, int], pairs: dict[str, str],
                   taken: set[str]) -> list[tuple[list[str], list[str]]]:
    """Refine colours until they stop splitting; the colour classes holding nodes of both sides."""
    colour_a = {n: base_a[n] for n in unpaired_a}
    colour_b = {n: base_b[n] for n in unpaired_b}

    def of_a(name: str | None) -> int:
        if name is None:
            return 0
        found = colour_a.get(name)
        if found is not None:
            return found
        return hash(("=", pairs[name])) if name in pairs else hash(("ext", name))

    def of_b(name: str | None) -> int:
        if name is None:
            return 0
        found = colour_b.get(name)
        if found is not None:
            return found
        return hash(("=", name)) if name in taken else hash(("ext", name))

    distinct = len(set(colour_a.values()) | set(colour_b.values()))
    for _ in range(_MAX_ROUNDS):
        new_a = {n: _refined(a, n, colour_a[n], of_a) for n in unpaired_a}
        new_b = {n: _refined(b, n, colour_b[n], of_b) for n in unpaired_b}
        colour_a, colour_b = new_a, new_b
        now = len(set(colour_a.values()) | set(colour_b.values()))
        if now == distinct:
            break
        distinct = now
    classes: dict[int, tuple[list[str], list[str]]] = {}
    for name in unpaired_a:
        classes.setdefault(colour_a[name], ([], []))[0].append(name)
    for name in unpaired_b:
        classes.setdefault(colour_b[name], ([], []))[1].append(name)
    return [group for group in classes.values() if group[0] and group[1]]


def _refined(side: NodeSet, name: str, colour: int, of: Callable[[str | None], int]) -> int:
    node = side.nodes[name]
    inputs = tuple((of(op), suffix) for op, suffix in side.inputs[name])
    controls = tuple(sorted(of(c) for c in node.control_inputs))
    consumers = tuple(sorted((of(c), slot) for c, slot in side.consumers.get(name, ())))
    return hash((colour, inputs, controls, consumers))


def _by_names(a: NodeSet, b: NodeSet, groups: list[tuple[list[str], list[str]]],
              pairs: dict[str, str]) -> dict[str, str]:
    """Pairs among equal-coloured nodes decided by names: learned rules, common tails, file order."""
    renamer = ScopeRenames(pairs.items())
    found: dict[str, str] = {}
    for xs, ys in groups:
        left = set(ys)
        for x in xs:
            y = renamer(x)
            if y in left:
                found[x] = y
                left.discard(y)
        rest = [x for x in xs if x not in found]
        found.update(_by_common_tail(rest, sorted(left, key=b.order.__getitem__)))
    if found:
        return found
    for xs, ys in groups:
        if len(xs) == len(ys):
            found.update(zip(sorted(xs, key=a.order.__getitem__), sorted(ys, key=b.order.__getitem__)))
    return found


def _by_common_tail(xs: list[str], ys: list[str]) -> dict[str, str]:
    """Pairs whose names share more trailing ``/`` components with each other than with any other
    (among at most _TAIL_PAIRS candidate pairs: larger groups are left to file order)."""
    if not xs or not ys or len(xs) * len(ys) > _TAIL_PAIRS:
        return {}
    best_for_x = {x: _best(x, ys) for x in xs}
    best_for_y = {y: _best(y, xs) for y in ys}
    return {x: y for x, y in best_for_x.items() if y is not None and best_for_y.get(y) == x}


def _best(name: str, others: list[str]) -> str | None:
    scores = [(_common_tail(name, other), other) for other in others]
    top = max(score for score, _ in scores)
    winners = [other for score, other in scores if score == top]
    return winners[0] if top > 0 and len(winners) == 1 else None


def _common_tail(x: str, y: str) -> int:
    xs, ys = x.split("/"), y.split("/")
    k = 0
    while k < min(len(xs), len(ys)) and xs[-1 - k] == ys[-1 - k]:
        k += 1
    return k


class ScopeRenames:
    """Scope renames explaining renamed pairs (``net/a/w`` -> ``model/a/w`` gives ``net`` ->
    ``model``, the most common target for each scope), kept as :class:`Rename` rules indexed by
    scope: the most specific scope of a name that has a rule renames it."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        votes: Counter[tuple[str, str]] = Counter()
        for x, y in pairs:
            if x == y:
                continue
            k = _common_tail(x, y)
            xs, ys = x.split("/"), y.split("/")
            old, new = "/".join(xs[: len(xs) - k]), "/".join(ys[: len(ys) - k])
            if old:
                votes[(old, new)] += 1
        self.rules: dict[str, Rename] = {}
        for (old, new), _ in votes.most_common():
            self.rules.setdefault(old, Rename(old, new))

    def __bool__(self) -> bool:
        return bool(self.rules)

    def rule_for(self, name: str) -> Rename | None:
        parts = name.split("/")
        for k in range(len(parts), 0, -1):
            rule = self.rules.get("/".join(parts[:k]))
            if rule is not None:
                return rule
        return None

    def __call__(self, name: str) -> str:
        rule = self.rule_for(name)
        renamed = rule.apply(name) if rule is not None else None
        return name if renamed is None else renamed


def _drop_unsound(a: NodeSet, b: NodeSet, found: dict[str, str], pairs: dict[str, str], taken: set[str],
                  base_a: dict[str, int], base_b: dict[str, int]) -> None:
    """Unpair structural pairs whose op, attrs or mapped inputs differ; an unpairing makes its
    consumers' pairs checked again."""
    queue = deque(found)
    while queue:
        x = queue.popleft()
        y = found.get(x)
        if y is None or (base_a[x] == base_b[y] and a.mapped_inputs(x, pairs) == b.mapped_inputs(y)):
            continue
        del found[x], pairs[x]
        taken.discard(y)
        queue.extend(c for c, _ in a.consumers.get(x, ()) if c in found)
